"""The paper's lifecycles (ProML, Tran et al. 2022), written in the DSL.

The 9-step distributed ML DevOps scenario maps onto two state machines:

====  =========================================  ==========================================
step  paper                                       lifecycle operation
====  =========================================  ==========================================
1     client has an idea                          ``Model.register`` by ``operator``
2     client hires a company to collect data      grant ``Dataset.dataset_admin``
3     data gathered                               ``Dataset.register`` (evidence: raw digest)
4     labelling outsourced to a crowd platform    grant ``Dataset.labeller``; ``Dataset.label``
5     data passed to the appointed developers     ``Dataset.review`` then ``Dataset.release``
6     model developed                             ``Model.train`` (inputs: released dataset)
7     model tested and verified                   ``Model.verify``: 2 verifiers, 2 domains
8     model returned to the client                ``Model.accept`` by ``operator``
9     third-party validation                      ``Model.audit`` by ``auditor``
====  =========================================  ==========================================
"""

from __future__ import annotations

from proml_sim.dsl import Artefact, Consortium, Role, State


class Dataset(Artefact):
    """A dataset collected by a data company and labelled by an outsourced labeller."""

    operator = Role(doc="client/operator who commissions the data")
    dataset_admin = Role(doc="data company that gathers and curates the data")
    labeller = Role(admin=dataset_admin, doc="outsourced labeller, hired by the dataset admin")

    collected = State(initial=True, by=dataset_admin, evidence=True, doc="raw data gathered")
    labelled = State(doc="labels attached")
    reviewed = State(doc="labels checked by someone other than the labeller")
    released = State(doc="handed over to the model developers")
    retired = State(final=True, doc="withdrawn from use")

    label = (collected | labelled).to(labelled, by=labeller, evidence=True)
    reject_labels = labelled.to(collected, by=dataset_admin)
    review = labelled.to(reviewed, by=dataset_admin, separate_from="label")
    release = reviewed.to(released, by=dataset_admin, evidence=True)
    retire = (collected | labelled | reviewed | released).to(retired, by=[operator, dataset_admin])


class Model(Artefact):
    """A model developed by one organisation, verified by two others, accepted and audited."""

    operator = Role(doc="client/operator who asked for the model and accepts it")
    developer = Role(doc="model developer")
    verifier = Role(doc="model verifier; approvals counted per trust domain")
    auditor = Role(doc="third-party validator")

    requested = State(initial=True, by=operator, doc="the client's idea, registered")
    trained = State(doc="a model version exists (evidence: model digest, inputs: datasets)")
    rejected = State(doc="verification failed; retrain")
    verified = State(doc="k-of-n verifiers approved the same version and evaluation")
    delivered = State(doc="returned to and accepted by the client")
    audited = State(final=True, doc="third-party validation recorded")
    withdrawn = State(final=True, doc="abandoned")

    train = (requested | trained | rejected).to(trained, by=developer, evidence=True)
    verify = trained.to(
        verified, by=verifier, approvals=2, count="domains", evidence=True, separate_from=train
    )
    reject = trained.to(rejected, by=verifier, evidence=True, separate_from=train)
    accept = verified.to(delivered, by=operator)
    audit = delivered.to(audited, by=auditor, evidence=True)
    withdraw = (requested | trained | rejected | verified | delivered).to(withdrawn, by=operator)


class GovernedDataset(Dataset):
    """The paper's Dataset under consortium governance: each trust domain enrols its own
    accounts; domains, their admin keys and their roles change by a quorum of two domains."""

    governance = Consortium(quorum=2)


class GovernedModel(Model):
    """The paper's Model under consortium governance; the trust domain that trained a version
    may neither verify nor reject it (domain-level separation of duty)."""

    governance = Consortium(quorum=2)
    verify = Model.trained.to(
        Model.verified, by=Model.verifier, approvals=2, count="domains", evidence=True,
        separate_from=Model.train, separate_domain_from=Model.train,
    )
    reject = Model.trained.to(
        Model.rejected, by=Model.verifier, evidence=True, separate_from=Model.train,
        separate_domain_from=Model.train,
    )


PAPER_LIFECYCLES: tuple[type[Artefact], ...] = (Dataset, Model)
#: The paper's lifecycles under consortium governance (the single-admin ones are above).
GOVERNED_LIFECYCLES: tuple[type[Artefact], ...] = (GovernedDataset, GovernedModel)


def lifecycle_spec(cls: type[Artefact]) -> str:
    """The import spec :func:`load_lifecycle` reads back: the paper's by name, any other as
    ``package.module:ClassName``."""
    if cls in PAPER_LIFECYCLES:
        return cls.__name__
    return f"{cls.__module__}:{cls.__qualname__}"


def load_lifecycle(spec: str) -> type[Artefact]:
    """``Dataset``/``Model`` (the paper's) or ``package.module:ClassName``; raises
    :class:`~proml_sim.errors.UnknownLifecycle` naming the problem and the fix."""
    import importlib

    from proml_sim.errors import UnknownLifecycle

    for cls in PAPER_LIFECYCLES:
        if spec == cls.__name__:
            return cls
    names = ", ".join(c.__name__ for c in PAPER_LIFECYCLES)
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise UnknownLifecycle(
            f"unknown lifecycle {spec!r}; use one of {names} or 'package.module:ClassName'"
        )
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UnknownLifecycle(f"cannot import module {mod_name!r} of lifecycle {spec!r} "
                               f"({exc}); check the spelling and PYTHONPATH") from exc
    except Exception as exc:  # the module's own code failed while importing: say so, no trace
        raise UnknownLifecycle(f"importing module {mod_name!r} of lifecycle {spec!r} failed: "
                               f"{type(exc).__name__}: {exc}; fix the module") from exc
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UnknownLifecycle(f"module {mod_name!r} has no class {attr!r}; check the "
                                   "class name in the spec")
    if not (isinstance(obj, type) and issubclass(obj, Artefact)) or obj is Artefact:
        raise UnknownLifecycle(f"{spec!r} is not a lifecycle class (a subclass of "
                               "proml_sim.dsl.Artefact)")
    return obj
