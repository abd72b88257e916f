"""Geometry of masked regions and the masking methods, on synthetic images with fine detail."""

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.privacy.errors import PrivacyInputError
from kaiserslautern_vss.privacy.masking import MaskMethod, apply_masks, mask_everything
from kaiserslautern_vss.privacy.regions import clip_boxes, expand_boxes, head_regions

IMAGE_SHAPE = (576, 768, 3)


def noise_image(seed: int = 0) -> np.ndarray:
    """Pixel-level detail everywhere: the hardest case for a mask to hide."""
    return np.random.default_rng(seed).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)


def fine_detail(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return gray - cv2.GaussianBlur(gray, (0, 0), 3)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_head_region_of_standing_person_is_widened_top_part():
    region = head_regions(np.array([[100, 100, 140, 220]]), IMAGE_SHAPE)[0]
    np.testing.assert_allclose(region, [96, 94, 144, 136])


def test_head_region_grows_for_squat_and_cut_off_boxes():
    boxes = np.array([[100, 100, 200, 200],    # seen from above or sitting: aspect 1
                      [300, 400, 400, 576],    # cut off by the bottom edge, aspect 1.76
                      [500, 100, 600, 150]])   # lying or heavily occluded: whole box
    regions = head_regions(boxes, IMAGE_SHAPE)
    head_fractions = (regions[:, 3] - boxes[:, 1]) / (boxes[:, 3] - boxes[:, 1])
    np.testing.assert_allclose(head_fractions, [0.6, 0.45, 1.0], atol=1e-6)


def test_head_regions_are_clipped_and_accept_no_boxes():
    region = head_regions(np.array([[-10, -5, 30, 100]]), IMAGE_SHAPE)[0]
    assert region[0] == 0 and region[1] == 0
    assert head_regions(np.zeros((0, 4)), IMAGE_SHAPE).shape == (0, 4)


def test_expand_boxes_scales_about_centre_and_clips():
    boxes = np.array([[10, 10, 30, 50], [700, 500, 760, 570]], np.float32)
    np.testing.assert_allclose(expand_boxes(boxes, 2.0, None), [[0, -10, 40, 70], [670, 465, 790, 605]])
    np.testing.assert_allclose(expand_boxes(boxes, 2.0, IMAGE_SHAPE), [[0, 0, 40, 70], [670, 465, 768, 576]])
    np.testing.assert_allclose(expand_boxes(boxes, np.array([1.0, 0.5]), None),
                               [[10, 10, 30, 50], [715, 517.5, 745, 552.5]])


@pytest.mark.parametrize('boxes, message', [
    (np.zeros((2, 3)), r'boxes must have shape \(N, 4\)'),
    (np.array([[0, 0, np.nan, 1]]), 'boxes must be finite'),
])
def test_bad_boxes_are_refused(boxes, message):
    with pytest.raises(PrivacyInputError, match=message):
        clip_boxes(boxes, IMAGE_SHAPE)


def test_bad_factor_and_shape_are_refused():
    with pytest.raises(PrivacyInputError, match='expansion factor must be positive'):
        expand_boxes(np.array([[0, 0, 1, 1]]), 0.0, None)
    with pytest.raises(PrivacyInputError, match='positive height and width'):
        head_regions(np.array([[0, 0, 1, 1]]), (0, 10))


@pytest.mark.parametrize('method', list(MaskMethod))
def test_each_method_changes_the_region_and_nothing_outside(method):
    original = noise_image()
    image = original.copy()
    box = (200.4, 100.6, 330.2, 260.9)
    assert apply_masks(image, np.array([box]), method) is None
    inside = np.zeros(IMAGE_SHAPE[:2], bool)
    inside[100:261, 200:331] = True  # rounded outwards
    assert np.array_equal(image[~inside], original[~inside])
    changed = (image != original).any(axis=2)[inside].mean()
    assert changed > 0.95
    assert abs(correlation(fine_detail(image)[102:259, 202:329], fine_detail(original)[102:259, 202:329])) < 0.1


@pytest.mark.parametrize('side', [12, 60, 400])
def test_pixelation_leaves_few_blocks_whatever_the_region_size(side):
    image = noise_image()
    apply_masks(image, np.array([[0, 0, side, side]]), MaskMethod.PIXELATE, strength=6)
    blocks = np.unique(image[:side, :side].reshape(-1, 3), axis=0)
    assert len(blocks) <= 36


def test_fill_is_solid_and_partly_outside_boxes_are_clipped():
    image = noise_image()
    apply_masks(image, np.array([[700, 500, 900, 700], [-50, -50, -10, -10]]), MaskMethod.FILL)
    assert (image[500:, 700:] == 0).all()
    assert np.array_equal(image[:500], noise_image()[:500])


def test_apply_masks_refuses_bad_input():
    with pytest.raises(PrivacyInputError, match='HxWx3 uint8 BGR'):
        apply_masks(np.zeros((10, 10), np.uint8), np.zeros((0, 4)), MaskMethod.BLUR)
    with pytest.raises(PrivacyInputError, match='at least 1 block'):
        apply_masks(noise_image(), np.zeros((0, 4)), MaskMethod.BLUR, strength=0)
    with pytest.raises(ValueError, match="'smudge' is not a valid MaskMethod"):
        apply_masks(noise_image(), np.zeros((0, 4)), 'smudge')


@pytest.mark.parametrize('method', list(MaskMethod))
def test_mask_everything_destroys_detail_and_keeps_the_input(method):
    original = noise_image(1)
    masked = mask_everything(original, method)
    assert np.array_equal(original, noise_image(1))
    assert masked.shape == original.shape
    assert abs(correlation(fine_detail(masked), fine_detail(original))) < 0.05
    # Beyond block edges, hardly any fine detail is left.
    assert np.abs(fine_detail(masked)).mean() < 0.1 * np.abs(fine_detail(original)).mean()
