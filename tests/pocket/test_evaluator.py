import numpy as np
from PIL import Image, ImageFilter

from studio.pocket import world
from studio.pocket.evaluator import judge


def _accuracy(scenes, side=64, transform=None):
    right = 0
    for scene in scenes:
        image = world.render(scene, side)
        if transform:
            image = transform(image)
        right += judge(image).matches(scene.shape, scene.color, scene.background)
    return right / len(scenes)


def test_ground_truth_accuracy_over_every_shape_and_colour():
    scenes = list(world.scenes(400, seed=11, shapes=world.ALL_SHAPES, colors=world.BASE_COLORS + world.NEW_COLORS))
    assert _accuracy(scenes) >= 0.99


def test_works_at_other_resolutions_and_with_blur():
    scenes = list(world.scenes(60, seed=12, shapes=world.ALL_SHAPES))
    assert _accuracy(scenes, side=256) >= 0.99
    assert _accuracy(scenes, transform=lambda im: im.filter(ImageFilter.GaussianBlur(0.8))) >= 0.95


def test_tolerates_noise_like_a_generated_image():
    rng = np.random.default_rng(0)

    def noisy(image):
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, (64, 64, 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    assert _accuracy(list(world.scenes(60, seed=13)), transform=noisy) >= 0.95


def test_blank_and_unknown_images_are_not_called_a_shape():
    blank = Image.new("RGB", (64, 64), world.PALETTE["gray"])
    assert judge(blank).shape == "none"
    assert judge(blank).background == "gray"
    # a long bar is no shape of ours, even though a stretched square would fit it
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[28:38, 6:58] = world.PALETTE["red"]
    assert judge(Image.fromarray(pixels)).shape == "unknown"


def test_new_shapes_are_told_apart_from_base_shapes():
    for shape in world.NEW_SHAPES:
        image = world.render(world.Scene(shape, "yellow", "black", 0.5, 0.5, 0.6))
        assert judge(image).shape == shape


def test_a_blurry_star_is_still_a_star_and_a_blurry_diamond_still_a_diamond():
    """Generated stars have rounded arms that fill a diamond's outline about as well as a star's; the notch count
    (five gaps between a star's arms, none for a diamond) keeps them apart."""
    from studio.pocket.evaluator import count_notches

    for shape in ("star", "diamond", "cross", "circle"):
        scenes = [world.Scene(shape, s.color, s.background, s.cx, s.cy, s.size) for s in world.scenes(30, seed=14)]
        blurred = _accuracy(scenes, transform=lambda im: im.filter(ImageFilter.GaussianBlur(1.5)))
        assert blurred >= 0.9, f"{shape}: {blurred:.0%} right after blur"
    assert count_notches(world.shape_mask("star", (8, 8, 56, 56), 64) > 0.5) == 5
    assert count_notches(world.shape_mask("square", (8, 8, 56, 56), 64) > 0.5) == 0
