"""Small files that ship in the wheel (scripted motions, the trained audio model)."""
