"""Rendering: the mesh renderer, the mouth interior and the compositor."""
