import numpy as np
import pytest

from studio.pocket import world


def test_same_seed_same_scenes_and_pixels():
    a = list(world.scenes(20, seed=3, shapes=world.ALL_SHAPES))
    b = list(world.scenes(20, seed=3, shapes=world.ALL_SHAPES))
    assert a == b
    assert np.array_equal(np.asarray(world.render(a[0])), np.asarray(world.render(b[0])))
    assert a != list(world.scenes(20, seed=4, shapes=world.ALL_SHAPES))


def test_base_stream_never_contains_new_shapes_or_colours():
    seen = list(world.scenes(2000, seed=0))
    assert {s.shape for s in seen} == set(world.BASE_SHAPES)
    assert {s.color for s in seen} == set(world.BASE_COLORS)
    assert {s.background for s in seen} == set(world.BASE_BACKGROUNDS)
    assert not {s.shape for s in seen} & set(world.NEW_SHAPES)


def test_vocabulary_sizes_match_the_spec():
    assert world.BASE_SHAPES == ("circle", "square", "triangle", "diamond")
    assert len(world.BASE_COLORS) >= 6 and len(world.BASE_BACKGROUNDS) >= 4
    assert len(world.base_combinations()) == 4 * len(world.BASE_COLORS) * len(world.BASE_BACKGROUNDS)


def test_sizes_and_positions_vary_and_stay_inside():
    seen = list(world.scenes(500, seed=1))
    sizes = [s.size for s in seen]
    assert min(sizes) < 0.45 and max(sizes) > 0.65
    assert np.std([s.cx for s in seen]) > 0.05 and np.std([s.cy for s in seen]) > 0.05
    for s in seen:
        x0, y0, x1, y1 = s.box(64)
        assert 0 <= x0 and 0 <= y0 and x1 <= 64 and y1 <= 64


def test_render_draws_the_colours_it_names():
    scene = world.Scene("square", "red", "black", 0.5, 0.5, 0.5)
    pixels = np.asarray(world.render(scene, 64))
    assert tuple(pixels[32, 32]) == world.PALETTE["red"]
    assert tuple(pixels[2, 2]) == world.PALETTE["black"]
    assert world.render(scene, 256).size == (256, 256)


def test_caption_and_validation():
    assert world.Scene("star", "pink", "gray").caption == "a pink star on a gray background"
    with pytest.raises(ValueError, match="unknown shape"):
        world.Scene("blob", "red", "black")
    with pytest.raises(ValueError, match="different colours"):
        world.Scene("circle", "black", "black")
    with pytest.raises(ValueError, match="leaves the image"):
        world.Scene("circle", "red", "black", cx=0.1, cy=0.5, size=0.5)
