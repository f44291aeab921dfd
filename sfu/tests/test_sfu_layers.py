"""Choosing a simulcast layer for a viewer: the smallest that fills the view, never a quiet one."""

from __future__ import annotations

from sfu.layers import LAYER_SILENT_SECONDS, Layer, choose_layer, expected_height

NOW = 1000.0


def layers(*heights: int | None, quiet: tuple[int, ...] = ()) -> list[Layer]:
    result = []
    for index, height in enumerate(heights):
        layer = Layer(index, "qhf"[index])
        layer.height = height
        layer.last_packet = NOW - (LAYER_SILENT_SECONDS + 1 if index in quiet else 0.1)
        result.append(layer)
    return result


def test_the_smallest_layer_at_least_about_as_tall_as_the_view_is_chosen() -> None:
    three = layers(180, 360, 720)
    assert choose_layer(three, 120, NOW) == 0
    assert choose_layer(three, 225, NOW) == 0  # 180 lines serve a 225-line view (slack)
    assert choose_layer(three, 300, NOW) == 1
    assert choose_layer(three, 450, NOW) == 1
    assert choose_layer(three, 675, NOW) == 2
    assert choose_layer(three, 2160, NOW) == 2  # nothing taller: the top


def test_a_viewer_that_said_nothing_gets_the_top_layer() -> None:
    assert choose_layer(layers(180, 360, 720), None, NOW) == 2


def test_a_quiet_layer_is_never_chosen() -> None:
    top_dropped = layers(180, 360, 720, quiet=(2,))
    assert choose_layer(top_dropped, 675, NOW) == 1
    assert choose_layer(top_dropped, None, NOW) == 1
    bottom_dropped = layers(180, 360, 720, quiet=(0,))
    assert choose_layer(bottom_dropped, 100, NOW) == 1


def test_when_every_layer_is_quiet_the_current_choice_stands() -> None:
    silent = layers(180, 360, 720, quiet=(0, 1, 2))
    assert choose_layer(silent, 100, NOW, current=1) == 1
    assert choose_layer(silent, 100, NOW) == 2


def test_unknown_heights_are_assumed_from_the_top_layer_down() -> None:
    unknown = layers(None, None, None)
    assert [expected_height(unknown, i) for i in range(3)] == [180, 360, 720]
    assert choose_layer(unknown, 300, NOW) == 1
    two = layers(None, None)
    assert [expected_height(two, i) for i in range(2)] == [360, 720]


def test_layers_not_seen_yet_count_as_sending_during_the_producers_first_second() -> None:
    starting = layers(180, 360, 720)
    for layer in starting[1:]:
        layer.last_packet = float("-inf")  # only the lowest layer's first packet is in
    assert choose_layer(starting, None, NOW, first_packet=NOW - 0.1) == 2
    assert choose_layer(starting, None, NOW, first_packet=NOW - LAYER_SILENT_SECONDS - 1) == 0
