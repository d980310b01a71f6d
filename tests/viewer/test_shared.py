"""The definitions the page and `liqmap render` share (api/viewer/static/viewer.json and
graphql/), checked against independent sources: matplotlib's inferno, the API's schema and its
Interval enum, and hand calculations of the scales, colour indices and labels."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from graphql import OperationDefinitionNode, parse, validate
from matplotlib import colormaps

from api.limits import ApiLimits
from api.schema import create_schema
from api.types.scalars import Interval, LeverageBand
from api.viewer.colormap import colour_index, legend_caption, legend_ticks, lut, scale
from api.viewer.labels import age, time_ticks, usd
from api.viewer.shared import SCRIPT_ID, colour, documents, page_block, style
from maps.bands import LEVERAGE_BANDS


def test_the_colour_map_is_matplotlibs_inferno_rounded_to_bytes() -> None:
    expected = np.round(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(int)
    assert style()["colormap"]["name"] == "inferno"
    np.testing.assert_array_equal(lut().astype(int), expected)


def test_colours_are_hex_and_every_reference_resolves() -> None:
    hexes = [*style()["colours"].values(), *style()["colormap"]["colours"]]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in hexes), hexes
    assert colour(style()["price_line"]["colour"]) == "#38bdf8"
    assert style()["defaults"]["side"] in style()["sides"]
    assert style()["defaults"]["scale"] in style()["scales"]


def test_every_shared_document_is_valid_against_the_api_schema() -> None:
    schema = create_schema(ApiLimits.defaults())._schema
    assert set(documents()) == {
        "catalogue",
        "limits",
        "latest",
        "heatmap",
        "details",
        "candles",
        "live",
        "realized",
        "swept",
        "clusters",
        "maxpain",
        "known_levels",  # the real-position overlay (#18), for the viewer to draw
    }
    for name, text in documents().items():
        parsed = parse(text)
        assert validate(schema, parsed) == [], name
        (operation,) = parsed.definitions
        assert isinstance(operation, OperationDefinitionNode)
        assert operation.name is not None
        assert operation.name.value.lower() == name.replace("_", "")


def test_intervals_are_the_apis_interval_enum() -> None:
    shared = [(i["id"], i["seconds"]) for i in style()["intervals"]]
    assert shared == [(member.name, member.seconds) for member in Interval]
    from cli.render import INTERVALS

    assert INTERVALS == {
        "auto": None,
        "5m": "FIVE_MINUTES",
        "15m": "FIFTEEN_MINUTES",
        "30m": "THIRTY_MINUTES",
        "1h": "ONE_HOUR",
        "4h": "FOUR_HOURS",
        "1d": "ONE_DAY",
    }


def test_leverage_bands_are_the_apis_enum_and_labels() -> None:
    """viewer.json's bands (the page's checkboxes, `liqmap render --leverage`) are the API's
    LeverageBand enum, in its order, with the labels maps.bands gives the map."""
    shared = style()["leverage_bands"]
    assert [b["id"] for b in shared] == [member.name for member in LeverageBand]
    assert [member.value for member in LeverageBand] == list(range(len(LEVERAGE_BANDS)))
    assert tuple(b["cli"] for b in shared) == LEVERAGE_BANDS


def test_scales_at_hand_computed_points() -> None:
    x = np.array([0.0, 0.001, 0.01, 0.25, 1.0])
    np.testing.assert_allclose(scale("sqrt").forward(x), [0, 0.0316227766, 0.1, 0.5, 1])
    np.testing.assert_allclose(scale("linear").forward(x), x)
    # log, 3 decades: 1e-3 of the top is the bottom of the bar, 1e-2 a third of the way up
    np.testing.assert_allclose(scale("log").forward(x), [0, 0, 1 / 3, 1 - 0.60206 / 3, 1], 1e-5)
    t = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(scale("sqrt").inverse(t), [0, 0.25, 1])
    np.testing.assert_allclose(scale("log").inverse(t), [0, 10**-1.5, 1])


def test_colour_index_at_hand_computed_values() -> None:
    values = np.array([0.0, 1e-9, 1.0, 25.0, 100.0], np.float32)  # largest: 100
    # sqrt: ⌊√0.25 · 255.999⌋ = 127; a value too small to see still gets index 1, not 0
    assert colour_index(values, scale("sqrt")).tolist() == [0, 1, 25, 127, 255]
    assert colour_index(values, scale("linear")).tolist() == [0, 1, 2, 63, 255]
    # log: 1 + log10(0.25)/3 = 0.79934 → 204; 1 + log10(0.01)/3 = 1/3 → 85
    assert colour_index(values, scale("log")).tolist() == [0, 1, 85, 204, 255]
    assert colour_index(np.zeros(3), scale("sqrt")).tolist() == [0, 0, 0]


def test_legend_ticks_and_caption() -> None:
    assert legend_ticks(4e6, scale("sqrt")) == [
        (0.0, "$0"),
        (0.25, "$250.0K"),  # 4e6 · 0.25²
        (0.5, "$1.0M"),
        (0.75, "$2.3M"),  # 2.25 → "2.3" (ties away from zero, as toFixed)
        (1.0, "$4.0M"),
    ]
    assert [label for _, label in legend_ticks(2e9, scale("log"))] == [
        "$0",
        "$11.2M",  # 2e9 · 10^-2.25
        "$63.2M",
        "$355.7M",
        "$2.00B",
    ]
    assert [label for _, label in legend_ticks(0.0, scale("linear"))] == ["$0", *["–"] * 4]
    assert legend_caption("short", scale("log")) == (
        "USD at risk per cell (shorts, log scale (3 decades))"
    )


def test_usd_and_age_labels() -> None:
    cases = {
        0.0: "$0",
        512.4: "$512",
        999.5: "$1000",
        1250.0: "$1.3K",  # an exact tie rounds up, as JavaScript's toFixed
        -5.0: "-$5",
        456_740_000.0: "$456.7M",
        1_234_000_000.0: "$1.23B",
    }
    assert {v: usd(v) for v in cases} == cases
    assert [age(s) for s in (-3, 45, 89.4, 200, 7200, 3 * 86400)] == [
        "0 s",
        "45 s",
        "89 s",
        "3 min",
        "2 h",
        "3 d",
    ]


def test_time_ticks_follow_the_pixel_rule() -> None:
    start = datetime(2026, 6, 21, 11, 45, tzinfo=UTC).timestamp()
    day = 86_400
    # 24 h over 1450 px: 1 h ticks are 60 px apart (< 72), 2 h ticks 121 px: 2 h steps
    ticks = time_ticks(start, start + day, 1450, 28, 74)
    labels = [t.label for t in ticks]
    assert labels[:7] == ["12:00", "14:00", "16:00", "18:00", "20:00", "22:00", "Jun 22"]
    assert [t.major for t in ticks].count(True) == 1
    assert ticks[0].t == datetime(2026, 6, 21, 12, tzinfo=UTC).timestamp()
    # 30 days over 600 px: days 1, 8, 15, 22 of each month (gaps of 7 days or more, 140 px);
    # daily ticks would be 20 px apart, two-day ones 40
    weekly = time_ticks(start, start + 30 * day, 600, 28, 74)
    assert [t.label for t in weekly] == ["Jun 22", "Jul 1", "Jul 8", "Jul 15"]
    assert [t.major for t in weekly] == [False, True, False, False]  # the 1st starts a month
    # with no room beside the plot, a label that would stick out is left out
    assert time_ticks(start, start + day, 1450)[0].label == "14:00"


def test_a_year_is_labelled_by_month_with_the_year() -> None:
    # 387 days to 2026-06-22 11:45 (the range of the issue) over 1450 px, room as on the page
    end = datetime(2026, 6, 22, 11, 45, tzinfo=UTC).timestamp()
    start = end - 387 * 86_400  # 2025-05-31 11:45
    ticks = time_ticks(start, end, 1450, 28, 74)
    # 1 June 2025 sits 1 px from the left edge: "Jun 2025" would not fit there, and a bare
    # "Jun" would repeat at the right end, so the axis starts at "Jul 2025"
    assert [t.label for t in ticks] == [
        "Jul 2025", "Aug", "Sep", "Oct", "Nov", "Dec", "2026", "Feb", "Mar", "Apr", "May", "Jun",
    ]  # fmt: skip
    assert [t.t for t in ticks][6] == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert [t.major for t in ticks] == [t.label == "2026" for t in ticks]
    # on a phone (274 px of plot) half-years: still the year at both labels
    phone = time_ticks(end - 365 * 86_400, end, 274, 28, 74)
    assert [t.label for t in phone] == ["Jul 2025", "2026"]
    # a day across new year: hours, and the year at midnight
    eve = datetime(2026, 12, 31, 6, tzinfo=UTC).timestamp()
    assert "2027" in [t.label for t in time_ticks(eve, eve + 86_400, 1000)]
    # several years: years
    decade = time_ticks(datetime(2020, 3, 1, tzinfo=UTC).timestamp(), end, 800)
    assert [t.label for t in decade] == [str(y) for y in range(2021, 2027)]


def test_time_labels_never_overlap_or_leave_the_canvas() -> None:
    end = datetime(2026, 6, 22, 11, 45, tzinfo=UTC).timestamp()
    char_px = style()["time_ticks"]["char_px"]
    for days in (0.5, 1, 3, 7, 30, 90, 365, 387, 400):
        for width in (200, 274, 600, 1000, 1450, 2400):
            ticks = time_ticks(end - days * 86_400, end, width, 28, 74)
            assert ticks, (days, width)
            x = [(t.t - (end - days * 86_400)) / (days * 86_400) * width for t in ticks]
            half = [len(t.label) * char_px / 2 for t in ticks]
            assert all(
                xi - h >= -28 and xi + h <= width + 74 for xi, h in zip(x, half, strict=True)
            )
            assert all(x[k + 1] - half[k + 1] > x[k] + half[k] for k in range(len(ticks) - 1))


def test_page_block_keeps_the_json_inside_its_script_element() -> None:
    block = page_block()
    assert block.count("</script>") == 1 and block.count("</style>") == 1
    payload = block.split(f'id="{SCRIPT_ID}">', 1)[1].removesuffix("</script>")
    assert json.loads(payload) == {"style": style(), "documents": documents()}


@pytest.mark.parametrize("name", ["sqrt", "linear", "log"])
def test_colour_index_is_monotonic_and_spans_the_map(name: str) -> None:
    values = np.linspace(0, 1, 100_001)
    index = colour_index(values, scale(name)).astype(int)
    assert index[0] == 0 and index[1] >= 1 and index[-1] == 255
    assert (np.diff(index) >= 0).all()
