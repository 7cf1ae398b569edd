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

``Dataset`` and ``Model`` are governed by a consortium of trust domains (quorum 2: a domain joins,
leaves or has its roles changed by proposal and votes; each domain's admin enrols its own
accounts), so no single key can mint approvers.  ``SingleAdminDataset`` / ``SingleAdminModel``
are the same lifecycles under the single-admin design (one deployer key over every role and
domain label), kept as an explicit option for comparison.
"""

from __future__ import annotations

from proml_sim.dsl import Artefact, Consortium, Role, State


class SingleAdminDataset(Artefact):
    """A dataset collected by a data company and labelled by an outsourced labeller, under the
    single-admin design (the deployer's key administers every role and names trust domains):
    kept as an explicit option for comparison; :class:`Dataset` is the default."""

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


class SingleAdminModel(Artefact):
    """A model developed by one organisation, verified by two others, accepted and audited,
    under the single-admin design (kept for comparison; :class:`Model` is the default)."""

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


class Dataset(SingleAdminDataset):
    """The paper's Dataset (the default) under consortium governance: each trust domain enrols
    its own accounts; domains, their admin keys and their roles change by a quorum of two
    domains.  The single-admin design is :class:`SingleAdminDataset`."""

    governance = Consortium(quorum=2)


class Model(SingleAdminModel):
    """The paper's Model (the default) under consortium governance; the trust domain that
    trained a version may neither verify nor reject it (domain-level separation of duty).  The
    single-admin design is :class:`SingleAdminModel`."""

    governance = Consortium(quorum=2)
    verify = SingleAdminModel.trained.to(
        SingleAdminModel.verified, by=SingleAdminModel.verifier, approvals=2, count="domains",
        evidence=True, separate_from=SingleAdminModel.train,
        separate_domain_from=SingleAdminModel.train,
    )
    reject = SingleAdminModel.trained.to(
        SingleAdminModel.rejected, by=SingleAdminModel.verifier, evidence=True,
        separate_from=SingleAdminModel.train, separate_domain_from=SingleAdminModel.train,
    )


#: The paper's lifecycles, the default: consortium governance (quorum 2).
PAPER_LIFECYCLES: tuple[type[Artefact], ...] = (Dataset, Model)
#: The same lifecycles under the single-admin design, for comparison.
SINGLE_ADMIN_LIFECYCLES: tuple[type[Artefact], ...] = (SingleAdminDataset, SingleAdminModel)
#: Former names of the consortium lifecycles (before they became the default), kept as aliases.
GovernedDataset = Dataset
GovernedModel = Model
GOVERNED_LIFECYCLES = PAPER_LIFECYCLES
#: Every lifecycle :func:`load_lifecycle` knows by its bare class name.
NAMED_LIFECYCLES: tuple[type[Artefact], ...] = (*PAPER_LIFECYCLES, *SINGLE_ADMIN_LIFECYCLES)


def lifecycle_spec(cls: type[Artefact]) -> str:
    """The import spec :func:`load_lifecycle` reads back: the paper's (either design) by name,
    any other as ``package.module:ClassName``."""
    if cls in NAMED_LIFECYCLES:
        return cls.__name__
    return f"{cls.__module__}:{cls.__qualname__}"


def load_lifecycle(spec: str) -> type[Artefact]:
    """``Dataset``/``Model`` (the paper's, consortium), ``SingleAdminDataset``/
    ``SingleAdminModel`` (the single-admin design) or ``package.module:ClassName``; raises
    :class:`~proml_sim.errors.UnknownLifecycle` naming the problem and the fix."""
    import importlib

    from proml_sim.errors import UnknownLifecycle, unknown_name_message

    for cls in NAMED_LIFECYCLES:
        if spec == cls.__name__:
            return cls
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise UnknownLifecycle(unknown_name_message(
            f"unknown lifecycle {spec!r}", spec, [c.__name__ for c in NAMED_LIFECYCLES])
            + "; or give your own as 'package.module:ClassName'")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UnknownLifecycle(f"cannot import module {mod_name!r} of lifecycle {spec!r} "
                               f"({exc}); check the spelling and PYTHONPATH") from exc
    except SystemExit as exc:  # a script's main part run on import, unguarded
        raise UnknownLifecycle(f"importing module {mod_name!r} of lifecycle {spec!r} called "
                               f"sys.exit({exc.code!r}); put the module's script part under "
                               "`if __name__ == '__main__':`") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the module's own code failed while importing: say so
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
