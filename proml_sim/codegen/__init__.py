"""IR -> contract source text (Vyper) and lifecycle diagrams."""

from proml_sim.codegen.diagram import to_dot, to_mermaid
from proml_sim.codegen.vyper import LAYOUT_PARTS, LAYOUTS, generate_vyper

__all__ = ["LAYOUTS", "LAYOUT_PARTS", "generate_vyper", "to_dot", "to_mermaid"]
