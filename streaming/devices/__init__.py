"""Local devices: a camera reader and a virtual-camera sink."""
