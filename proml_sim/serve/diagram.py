"""Server-side SVG: a lifecycle with its current state highlighted, and a lineage graph whose
nodes link to their artefact pages.  Plain SVG text built from the IR and the lineage graph
(layered left to right), so pages need no script and no asset from the network."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from html import escape
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 46, 90, 30, 20


def _layers(nodes: Sequence[Hashable], edges: Sequence[tuple[Hashable, Hashable]],
            roots: Sequence[Hashable]) -> dict[Hashable, tuple[int, int]]:
    """(column, row) of each node: column = BFS depth from ``roots``; unreached nodes last."""
    depth = {r: 0 for r in roots}
    order = list(roots)
    for n in order:
        for u, v in edges:
            if u == n and v not in depth:
                depth[v] = depth[n] + 1
                order.append(v)
    last = max(depth.values(), default=-1) + 1
    rows: dict[int, int] = {}
    out = {}
    for n in nodes:
        col = depth.get(n, last)
        out[n] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return out


def _xy(col: int, row: int) -> tuple[int, int]:
    return PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
            'font-family="sans-serif" font-size="12">'
            f"<title>{escape(title)}</title>"
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#555"/></marker></defs>' + "".join(body) + "</svg>")


def _size(pos: Mapping[Any, tuple[int, int]]) -> tuple[int, int]:
    cols = max((c for c, _ in pos.values()), default=0) + 1
    rows = max((r for _, r in pos.values()), default=0) + 1
    width = 2 * PAD + cols * BOX_W + (cols - 1) * GAP_X
    return width, 2 * PAD + rows * BOX_H + (rows - 1) * GAP_Y + 20


def _edge(a: tuple[int, int], b: tuple[int, int], label: str, bend: int) -> str:
    (ax, ay), (bx, by) = _xy(*a), _xy(*b)
    if a[0] < b[0]:
        x1, y1, x2, y2 = ax + BOX_W, ay + BOX_H // 2, bx, by + BOX_H // 2
    elif a[0] > b[0]:  # backwards: below the boxes
        x1, y1, x2, y2 = ax, ay + BOX_H - 6, bx + BOX_W, by + BOX_H - 6
    else:
        x1, y1, x2, y2 = ax + BOX_W // 2, ay + BOX_H, bx + BOX_W // 2, by
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2 + bend
    text = (f'<text x="{mx:.0f}" y="{my - 4:.0f}" text-anchor="middle" fill="#333" '
            f'font-size="10">{escape(label)}</text>') if label else ""
    return (f'<path d="M{x1},{y1} Q{mx:.0f},{my:.0f} {x2},{y2}" fill="none" stroke="#555" '
            f'marker-end="url(#arrow)"/>{text}')


def lifecycle_svg(ir: Any, current: str | None = None) -> str:
    """The lifecycle's states and transitions; ``current`` drawn highlighted (class
    ``current``); self loops are listed under their state."""
    states = [s.name for s in ir.states]
    edges: list[tuple[str, str, str]] = []
    loops: dict[str, list[str]] = {}
    for t in ir.transitions:
        for src in t.sources:
            if src == t.target:
                loops.setdefault(src, []).append(t.name)
            else:
                edges.append((src, t.target, t.name))
    pos = _layers(states, [(u, v) for u, v, _ in edges], [ir.initial.name])
    width, height = _size(pos)
    body = []
    seen: dict[tuple[Hashable, Hashable], int] = {}
    for u, v, name in edges:
        n = seen.get((u, v), 0)
        seen[(u, v)] = n + 1
        body.append(_edge(pos[u], pos[v], name, 14 * n - (10 if pos[u][0] == pos[v][0] else 0)))
    finals = {s.name for s in ir.states if s.final}
    for s in states:
        x, y = _xy(*pos[s])
        cur = s == current
        fill = "#fdd835" if cur else ("#c7e9c0" if s in finals else "#dbe9f6")
        stroke = "#b71c1c" if cur else ("#238b45" if s in finals else "#4a6fa5")
        loop = f" (loop: {', '.join(loops[s])})" if s in loops else ""
        body.append(
            f'<g class="state{" current" if cur else ""}" data-state="{escape(s)}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="10" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{3 if cur else 1.5}"/>'
            f'<text x="{x + BOX_W // 2}" y="{y + 20}" text-anchor="middle" '
            f'font-weight="{"bold" if cur else "normal"}">{escape(s)}</text>'
            f'<text x="{x + BOX_W // 2}" y="{y + 36}" text-anchor="middle" font-size="9">'
            f'{escape(("current" if cur else "") + loop)[:40]}</text></g>')
    return _svg(width, height, body, f"{ir.name} lifecycle"
                + (f", current state {current}" if current else ""))


def lineage_svg(graph: Any, focus: Hashable, label: Callable[[Any], str],
                href: Callable[[Any], str]) -> str:
    """A lineage graph (networkx DiGraph of versions, edges from input to output): each
    version a link to ``href(key)``; ``focus`` highlighted."""
    import networkx as nx

    order = [n for gen in nx.topological_generations(graph) for n in gen] \
        if nx.is_directed_acyclic_graph(graph) else list(graph.nodes)
    roots = [n for n in order if graph.in_degree(n) == 0] or order[:1]
    pos = _layers(order, list(graph.edges), roots)
    width, height = _size(pos)
    body = [_edge(pos[u], pos[v], "", 0) for u, v in graph.edges]
    for n in order:
        x, y = _xy(*pos[n])
        attrs = graph.nodes[n]
        me = n == focus
        body.append(
            f'<a href="{escape(href(n))}" class="lineage-node{" focus" if me else ""}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{"#fdd835" if me else "#eef3f8"}" stroke="#4a6fa5"/>'
            f'<text x="{x + BOX_W // 2}" y="{y + 19}" text-anchor="middle">'
            f'{escape(label(n))[:24]}</text>'
            f'<text x="{x + BOX_W // 2}" y="{y + 35}" text-anchor="middle" font-size="9">'
            f'{escape(str(attrs.get("state", "")))}</text></a>')
    return _svg(width, height, body, "lineage")
