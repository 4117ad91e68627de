"""Landmark index sets of MediaPipe's 478-point face mesh (468 face points + 10 iris points).

"Right"/"left" are the subject's: the subject's right eye appears on the image's left.
Upper/lower contour lists are ordered from the outer corner inwards (eyes) or left to right in the image
(lips) and are paired element by element (``EYE_R_UPPER[i]`` sits above ``EYE_R_LOWER[i]``).
"""

from __future__ import annotations

import numpy as np

# Eyes: corners, then 7 upper and 7 lower lid points between them, paired.
EYE_R_OUTER, EYE_R_INNER = 33, 133
EYE_L_OUTER, EYE_L_INNER = 263, 362
EYE_R_UPPER = (246, 161, 160, 159, 158, 157, 173)
EYE_R_LOWER = (7, 163, 144, 145, 153, 154, 155)
EYE_L_UPPER = (466, 388, 387, 386, 385, 384, 398)
EYE_L_LOWER = (249, 390, 373, 374, 380, 381, 382)
# The ring around each eye (lid crease above, lid margin below), which follows the lids partly.
EYE_R_UPPER_RING = (247, 30, 29, 27, 28, 56, 190)
EYE_R_LOWER_RING = (130, 25, 110, 24, 23, 22, 26, 112, 243)
EYE_L_UPPER_RING = (467, 260, 259, 257, 258, 286, 414)
EYE_L_LOWER_RING = (359, 255, 339, 254, 253, 252, 256, 341, 463)

IRIS_R_CENTER, IRIS_L_CENTER = 468, 473
IRIS_R = (468, 469, 470, 471, 472)
IRIS_L = (473, 474, 475, 476, 477)

BROW_R = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
BROW_L = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)

# Lips, image left to right, corners shared.
MOUTH_CORNER_R, MOUTH_CORNER_L = 61, 291
LIP_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
INNER_CORNER_R, INNER_CORNER_L = 78, 308

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
CHIN = 152
NOSE_TIP = 1
NOSE_BASE = 2
FOREHEAD = 10

# Points that move little with expression: used to estimate the head's rigid pose.
POSE_POINTS = (
    33, 133, 263, 362,  # eye corners
    10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1,  # forehead and nose ridge
    234, 454, 127, 356, 93, 323, 132, 361,  # face sides
    21, 251, 54, 284, 103, 332,  # upper face outline
)


def inner_mouth_polygon() -> np.ndarray:
    """Indices of the inner lip contour as a closed polygon (upper left→right, lower right→left)."""
    return np.array(list(LIP_INNER_UPPER) + list(LIP_INNER_LOWER[-2:0:-1]), dtype=np.int64)


def eye_polygon(right: bool) -> np.ndarray:
    """Indices of one eye's opening as a closed polygon."""
    outer, inner = (EYE_R_OUTER, EYE_R_INNER) if right else (EYE_L_OUTER, EYE_L_INNER)
    upper, lower = (EYE_R_UPPER, EYE_R_LOWER) if right else (EYE_L_UPPER, EYE_L_LOWER)
    return np.array([outer, *upper, inner, *reversed(lower)], dtype=np.int64)
