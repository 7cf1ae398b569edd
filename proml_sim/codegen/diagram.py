"""Lifecycle diagrams: mermaid and Graphviz dot text (pure), and a PNG via matplotlib (lazy)."""

from __future__ import annotations

from pathlib import Path

from proml_sim.ir.model import LifecycleIR, TransitionIR


def _label(t: TransitionIR) -> str:
    parts = [t.name, f"by {'/'.join(t.by)}"]
    if t.approvals > 1:
        parts.append(f"{t.approvals}-of-n {t.count}")
    if t.evidence:
        parts.append("evidence")
    if t.separate_from:
        parts.append(f"not actor of {'/'.join(t.separate_from)}")
    if t.separate_domain_from:
        parts.append(f"not domain of {'/'.join(t.separate_domain_from)}")
    return ", ".join(parts)


def _governance(ir: LifecycleIR) -> str:
    """One line on who governs roles and domains."""
    if ir.consortium is None:
        return "single admin: the deployer's key grants every role in any domain"
    return (f"consortium: domains enrol their own accounts; membership and domain roles by "
            f"quorum {ir.consortium.quorum}")


def to_mermaid(ir: LifecycleIR) -> str:
    """A mermaid ``stateDiagram-v2`` of the lifecycle (deterministic)."""
    lines = ["stateDiagram-v2", f"    %% {ir.name} (IR {ir.fingerprint()[:16]})"]
    if ir.consortium is not None:
        lines.append(f"    %% {_governance(ir)}")
    reg = f"register by {'/'.join(ir.register_by)}" if ir.register_by else "register"
    lines.append(f"    [*] --> {ir.initial.name}: {reg}")
    for t in ir.transitions:
        for src in t.sources:
            lines.append(f"    {src} --> {t.target}: {_label(t)}")
    for st in ir.states:
        if st.final:
            lines.append(f"    {st.name} --> [*]")
    return "\n".join(lines) + "\n"


def to_dot(ir: LifecycleIR) -> str:
    """A Graphviz digraph of the lifecycle (deterministic)."""
    lines = [f'digraph "{ir.name}" {{', "  rankdir=LR;", '  node [shape=box, style=rounded];']
    if ir.consortium is not None:
        lines.append(f'  label="{_governance(ir)}";')
    lines.append('  "__start" [shape=point];')
    for s in ir.states:
        shape = ', peripheries=2' if s.final else ""
        lines.append(f'  "{s.name}" [label="{s.name}"{shape}];')
    lines.append(f'  "__start" -> "{ir.initial.name}" [label="register"];')
    for t in ir.transitions:
        for src in t.sources:
            lines.append(f'  "{src}" -> "{t.target}" [label="{_label(t)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_png(ir: LifecycleIR, path: str | Path) -> Path:
    """Draw the lifecycle to a PNG with networkx + matplotlib (needs both installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import networkx as nx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"rendering a lifecycle PNG needs matplotlib and networkx ({exc}); "
            "install them with `pip install 'proml-sim[dev]'`"
        ) from exc
    g = nx.MultiDiGraph()
    for s in ir.states:
        g.add_node(s.name)
    loops: dict[str, list[str]] = {}
    for t in ir.transitions:
        for src in t.sources:
            if src == t.target:  # self loops are listed under the node, not drawn as arcs
                loops.setdefault(src, []).append(t.name)
            else:
                g.add_edge(src, t.target, label=t.name)
    # layered layout: BFS depth from the initial state, left to right
    depth = {ir.initial.name: 0}
    order = [ir.initial.name]
    for n in order:
        for _, m in g.out_edges(n):
            if m not in depth:
                depth[m] = depth[n] + 1
                order.append(m)
    for n in g.nodes:
        g.nodes[n]["layer"] = depth.get(n, 0)
    pos = nx.multipartite_layout(g, subset_key="layer")
    fig, ax = plt.subplots(figsize=(2.2 * (max(depth.values()) + 2), 4.5))
    finals = [s.name for s in ir.states if s.final]
    others = [s.name for s in ir.states if not s.final]
    nx.draw_networkx_nodes(g, pos, nodelist=others, node_color="#dbe9f6", node_size=2200, ax=ax)
    nx.draw_networkx_nodes(g, pos, nodelist=finals, node_color="#c7e9c0", node_size=2200,
                           edgecolors="#238b45", linewidths=2, ax=ax)
    node_labels = {
        n: n + ("".join(f"\n(loop: {x})" for x in loops.get(n, []))) for n in g.nodes
    }
    nx.draw_networkx_labels(g, pos, labels=node_labels, font_size=8, ax=ax)
    edges = list(g.edges(keys=True))
    for u, v, _k in edges:
        rad = 0.25
        nx.draw_networkx_edges(g, pos, edgelist=[(u, v)], connectionstyle=f"arc3,rad={rad}",
                               arrows=True, arrowsize=14, node_size=2200, ax=ax)
    labels: dict[tuple[str, str], list[str]] = {}
    for u, v, k in edges:
        labels.setdefault((u, v), []).append(g.edges[u, v, k]["label"])
    nx.draw_networkx_edge_labels(g, pos, edge_labels={e: "\n".join(ls) for e, ls in labels.items()},
                                 font_size=7, ax=ax, connectionstyle="arc3,rad=0.25")
    ax.set_title(f"{ir.name} lifecycle (IR {ir.fingerprint()[:12]})")
    ax.axis("off")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
