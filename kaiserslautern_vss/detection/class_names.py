"""Class-name lists: the built-in COCO names and name files (one name a line)."""

from __future__ import annotations

from pathlib import Path

COCO_CLASS_FILE_NAME = 'coco_classes.txt'

COCO_CLASS_NAMES: tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush',
)

# Darknet/VOC spellings found in many shipped coco_classes.txt files (the shared one included),
# mapped to the official COCO names so labels match the topic contract whichever list ships.
COCO_NAME_ALIASES = {
    'motorbike': 'motorcycle', 'aeroplane': 'airplane', 'sofa': 'couch',
    'pottedplant': 'potted plant', 'diningtable': 'dining table', 'tvmonitor': 'tv',
}


class ClassNamesError(ValueError):
    """A class-name file is missing, unreadable or malformed."""


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Names from a text file, one per line in class-index order; blank lines are ignored and
    Darknet spellings of COCO names replaced by the official ones."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as error:
        raise ClassNamesError(f'cannot read class names from {path}: {error.strerror}') from error
    names = tuple(COCO_NAME_ALIASES.get(line.strip(), line.strip())
                  for line in text.splitlines() if line.strip())
    if not names:
        raise ClassNamesError(f'class-name file {path} holds no names (expected one name a line)')
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ClassNamesError(f'class-name file {path} repeats names: {", ".join(duplicates)}')
    return names


def class_names_for_model(model_path: str | Path, class_names_path: str = '') -> tuple[str, ...]:
    """The explicit file if given, else ``coco_classes.txt`` beside the model, else built-in COCO."""
    if class_names_path:
        return read_class_names(class_names_path)
    beside_model = Path(model_path).with_name(COCO_CLASS_FILE_NAME)
    if beside_model.is_file():
        return read_class_names(beside_model)
    return COCO_CLASS_NAMES
