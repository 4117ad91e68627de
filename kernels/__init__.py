"""Image kernels. Each GPU (CuPy) kernel has a NumPy/OpenCV twin with the same signature."""
