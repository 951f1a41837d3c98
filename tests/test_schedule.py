"""Schedule grammar, kernels and the token arithmetic of Eq. 1-3 (framepack-notes.md, section 2)."""

import math

import pytest

from framepack_lab.schedule import (
    BASE,
    MAX_FRAMES,
    MAX_KERNEL_SIZE,
    PRESETS,
    Block,
    Kernel,
    Schedule,
    Side,
    as_kernel,
    as_schedule,
    context_length,
    context_length_limit,
    frame_length,
    parse,
    parse_kernel,
    tail_token_count,
    unpacked_length,
)

K1, K2, K4, K8 = (Kernel.k(n) for n in (1, 2, 4, 8))

# every schedule name quoted in framepack-notes.md, plus the variants the notes mention
NOTES_NAMES = [
    "td_f16k4f4k2f1k1_g9",
    "td_f16k4f4k2f1k1_g9_x_f1k1",
    "f1k1_x_g9_f1k1f4k2f16k4_td",
    "f1k1_x_g9_f1k1f2k2f16k4_td",
    "f16k4f2k2f1k1_g9",
    "f1k1_x_f16k4f2k2f1k1_g9",
    "td_f16k4f4k2f1k1_g9+D",
    "f1k1_x_g9_f1k1f2k2f16k4_td+D",
    "ta_f16k4f4k2f1k1_g9",
    "tc_f16k4f4k2f1k1_g9",
]


# ------------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("n,size,compression", [(1, (1, 2, 2), 1), (2, (2, 4, 4), 8),
                                                (4, (4, 8, 8), 64), (8, (8, 16, 16), 512)])
def test_kn_is_n_2n_2n(n, size, compression):
    k = Kernel.k(n)
    assert k.size == size
    assert k.compression == compression == size[0] * size[1] * size[2] // 4
    assert k.ratio == (n, n, n)
    assert k.name == f"k{n}"
    assert str(k) == f"k{n}"


def test_base_kernel():
    assert BASE == K1 == Kernel(1, 2, 2)
    assert BASE.compression == 1 and BASE.ratio == (1, 1, 1)


def test_same_rate_from_different_kernels():
    # notes: 64x from (1,16,16), (4,8,8), (16,4,4)
    assert Kernel(1, 16, 16).compression == Kernel(4, 8, 8).compression == Kernel(16, 4, 4).compression == 64
    assert Kernel(1, 16, 16).name == "k1h16w16"
    assert Kernel(16, 4, 4).ratio == (16, 2, 2)


def test_kernel_tokens_pad_up():
    # 80x76 latent: base grid 40x38 = 1520 tokens per frame
    assert K1.tokens(1, 80, 76) == 1520
    assert K2.tokens(2, 80, 76) == 1 * 20 * 19 == 380
    assert K4.tokens(16, 80, 76) == 4 * 10 * 10 == 400  # 76/8 = 9.5 -> 10 (replicate pad)
    assert K4.tokens(3, 80, 76) == 1 * 10 * 10  # a short block pads to one temporal token
    assert K4.tokens(5, 80, 76) == 2 * 10 * 10
    assert K1.tokens(1, 60, 104) == 1560  # HunyuanVideo 480p: L_f = 1560


@pytest.mark.parametrize("bad,axis", [((3, 6, 6), "pf=3"), ((1, 1, 2), "ph=1"), ((1, 2, 6), "pw=6"),
                                      ((0, 2, 2), "pf=0")])
def test_kernel_rejects_non_power_of_two(bad, axis):
    with pytest.raises(ValueError, match=axis):
        Kernel(*bad)


def test_kn_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="k3"):
        Kernel.k(3)


# ------------------------------------------------------------------------------- parsing
def test_vanilla_example():
    s = parse("td_f16k4f4k2f1k1_g9")
    assert s.generated == 9
    assert s.tail == "td" and s.tail_side == "left"
    assert s.left == Side(near=(Block(16, K4), Block(4, K2), Block(1, K1)))
    assert s.right == Side()
    assert not s.discrete
    assert s.context_frames == 21
    assert s.kernels == frozenset({K1, K2, K4})


def test_anti_drifting_example():
    s = parse("td_f16k4f4k2f1k1_g9_x_f1k1")
    assert s.generated == 9
    assert s.tail == "td" and s.tail_side == "left"
    assert s.left.near == (Block(16, K4), Block(4, K2), Block(1, K1)) and not s.left.skip
    # the endpoint frame is beyond the skip: anchored at the video's end
    assert s.right == Side(near=(), far=(Block(1, K1),), skip=True)


def test_inverted_example():
    s = parse("f1k1_x_g9_f1k1f4k2f16k4_td")
    assert s.generated == 9
    assert s.tail == "td" and s.tail_side == "right"
    # the first frame is a far anchor on the left, beyond the skip
    assert s.left == Side(near=(), far=(Block(1, K1),), skip=True)
    # right side in time order: nearest (least compressed) first
    assert s.right == Side(near=(Block(1, K1), Block(4, K2), Block(16, K4)))


def test_official_inverted_and_f1():
    inv = parse("f1k1_x_g9_f1k1f2k2f16k4_td")
    assert inv.right.near == (Block(1, K1), Block(2, K2), Block(16, K4))
    assert inv.context_frames == 1 + 1 + 2 + 16
    f1 = parse("f1k1_x_f16k4f2k2f1k1_g9")
    assert f1.left == Side(near=(Block(16, K4), Block(2, K2), Block(1, K1)), far=(Block(1, K1),), skip=True)
    assert f1.right == Side() and f1.tail is None


def test_blocks_without_tail():
    s = parse("f16k4f2k2f1k1_g9")
    assert s.tail is None
    assert s.left.near == (Block(16, K4), Block(2, K2), Block(1, K1))
    assert s.left.frames == 19  # the official 1+2+16 history, about 2.5 s


def test_discrete_flag():
    s = parse("td_f16k4f4k2f1k1_g9+D")
    assert s.discrete
    assert s.name.endswith("+D")
    base = parse("td_f16k4f4k2f1k1_g9")
    assert s.left == base.left and s.generated == base.generated and not base.discrete


def test_long_form_kernel_equals_short():
    assert parse("f1k1h2w2_g4") == parse("f1k1_g4")
    assert parse("td_f16k4h8w8f2k2h4w4f1k1h2w2_g9") == parse("td_f16k4f2k2f1k1_g9")
    assert parse("f1k1h2w2_g4").name == "f1k1_g4"
    # a genuinely non-cubic kernel keeps its long form
    s = parse("f1k1h16w16_g4")
    assert s.left.near[0].kernel == Kernel(1, 16, 16)
    assert s.name == "f1k1h16w16_g4"


@pytest.mark.parametrize("name", NOTES_NAMES)
def test_round_trip_notes(name):
    s = parse(name)
    assert parse(s.name) == s
    assert s.name == name  # every example in the notes is already canonical
    assert str(s) == name


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_round_trip_presets(key):
    preset = PRESETS[key]
    s = preset.schedule
    assert parse(s.name) == s
    assert as_schedule(key) == s
    assert as_schedule(s) is s
    assert as_schedule(preset.name) == s
    assert preset.key == key and preset.description


def test_presets_cover_the_paper_variants():
    assert {"geometric", "level_duplication", "temporal_kernel", "symmetric", "important_start",
            "anti_drifting", "inverted", "official_inverted", "official_vanilla"} <= set(PRESETS)
    assert PRESETS["official_inverted"].name == "f1k1_x_g9_f1k1f2k2f16k4_td"


def test_geometric_preset_halves_tokens_per_frame():
    # Eq. 1 with lambda = 2: each older frame gets half the tokens of the next newer one
    s = PRESETS["geometric"].schedule
    tokens = [b.tokens(64, 64) for b in s.left.near[::-1]]  # newest first
    assert tokens[0] == 32 * 32
    assert all(a == 2 * b for a, b in zip(tokens, tokens[1:]))


@pytest.mark.parametrize("name", ["f1k1_g4_f1k1", "x_f1k1_g4", "g4_x_f1k1", "f1k1_x_f2k2_g4",
                                  "g4_f2k2_x_f1k1f1k1", "tc_f1k1_g4", "g1", "f2k1f2k2h4w8_g3"])
def test_round_trip_more_shapes(name):
    s = parse(name)
    assert parse(s.name) == s
    assert s.name == name


def test_canonical_name_merges_split_block_tokens():
    s = parse("f16k4_f2k2_f1k1_g9")
    assert s == parse("f16k4f2k2f1k1_g9")
    assert s.name == "f16k4f2k2f1k1_g9"


def test_schedule_constructed_directly_has_a_name():
    s = Schedule(9, right=Side(near=(Block(1, K1), Block(2, K2), Block(16, K4))),
                 left=Side(far=(Block(1, K1),), skip=True), tail="td", tail_side="right")
    assert s.name == "f1k1_x_g9_f1k1f2k2f16k4_td"


# -------------------------------------------------------------------------------- tokens
def test_acceptance_figure():
    s = parse("f1k1_x_g9_f1k1f2k2f16k4_td")
    assert s.token_count(80, 76) == 17500
    bd = s.token_breakdown(80, 76)
    assert bd == {"left:0:f1k1": 1520, "g9": 13680, "right:0:f1k1": 1520, "right:1:f2k2": 380,
                  "right:2:f16k4": 400}
    assert list(bd) == ["left:0:f1k1", "g9", "right:0:f1k1", "right:1:f2k2", "right:2:f16k4"]
    assert bd["g9"] == 13680
    assert bd["left:0:f1k1"] + bd["right:0:f1k1"] == 3040
    # the same for any video length: td drops the tail
    assert s.token_count(80, 76, tail_frames=1000) == 17500


def test_context_is_one_and_a_half_frames():
    # f16k4f2k2f1k1: 1 + 2/8 + 16/64 = 1.5 L_f (when the latent size divides every kernel)
    s = parse("f16k4f2k2f1k1_g9")
    L_f = K1.tokens(1, 64, 64)
    assert s.token_count(64, 64) - 9 * L_f == 1.5 * L_f


def test_vanilla_breakdown_order():
    s = parse("td_f16k4f4k2f1k1_g9_x_f1k1")
    bd = s.token_breakdown(80, 76)
    assert list(bd) == ["left:0:f16k4", "left:1:f4k2", "left:2:f1k1", "g9", "right:0:f1k1"]
    assert bd["left:1:f4k2"] == 2 * 20 * 19


@pytest.mark.parametrize("tail,per", [("td", lambda n: 0), ("ta", lambda n: n), ("tc", lambda n: 1 if n else 0)])
@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_tail_tokens(tail, per, n):
    s = parse(f"{tail}_f16k4f4k2f1k1_g9")
    assert s.tail_tokens(n) == per(n)
    assert s.token_count(80, 76, tail_frames=n) == s.token_count(80, 76) + per(n)
    bd = s.token_breakdown(80, 76, tail_frames=n)
    if per(n):
        assert list(bd)[0] == tail and bd[tail] == per(n)  # written on the left (old) side
    else:
        assert tail not in bd


def test_tail_on_right_is_last_in_breakdown():
    s = parse("f1k1_x_g9_f1k1f2k2f16k4_ta")
    bd = s.token_breakdown(80, 76, tail_frames=5)
    assert list(bd)[-1] == "ta" and bd["ta"] == 5


def test_tail_tokens_rejects_negative():
    with pytest.raises(ValueError, match="tail_frames"):
        parse("ta_f1k1_g4").tail_tokens(-1)


@pytest.mark.parametrize("h,w", [(0, 76), (80, 0), (-2, 4)])
def test_token_count_rejects_bad_sizes(h, w):
    s = parse("f1k1_x_g9_f1k1f2k2f16k4_td")
    with pytest.raises(ValueError, match="latent_h" if h < 1 else "latent_w"):
        s.token_count(h, w)


# ------------------------------------------------------------------------------ Eq. 1-3
def test_eq1_frame_length():
    assert frame_length(1560, 2, 0) == 1560
    assert frame_length(1560, 2, 1) == 780
    assert frame_length(1560, 2, 3) == 195
    assert frame_length(1000, 10, 2) == pytest.approx(10)


@pytest.mark.parametrize("S", [1, 9])
def test_eq2_exact_values(S):
    L_f = 1560
    assert context_length(L_f, 2, 0, S) == S * L_f
    assert context_length(L_f, 2, 1, S) == S * L_f + L_f
    assert context_length(L_f, 2, 2, S) == S * L_f + 1.5 * L_f
    assert context_length(L_f, 2, 3, S) == S * L_f + 1.75 * L_f
    assert context_length(L_f, 4, 2, S) == pytest.approx(S * L_f + 1.25 * L_f)


@pytest.mark.parametrize("lam", [1.5, 2, 3])
@pytest.mark.parametrize("T", [0, 1, 2, 5, 12])
def test_eq2_is_the_sum_of_eq1(lam, T):
    L_f, S = 1560, 9
    assert context_length(L_f, lam, T, S) == pytest.approx(
        S * L_f + sum(frame_length(L_f, lam, i) for i in range(T)))


@pytest.mark.parametrize("lam", [1.25, 2, 3, 10])
def test_eq2_monotone_and_bounded_by_eq3(lam):
    L_f, S = 1560, 9
    limit = context_length_limit(L_f, lam, S)
    assert limit == pytest.approx((S + lam / (lam - 1)) * L_f)
    values = [context_length(L_f, lam, T, S) for T in range(0, 400)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert all(a < b for a, b in zip(values[:8], values[1:9]))  # strictly, while above float precision
    # bounded by Eq. 3 (up to one rounding of the two float formulas once lambda**-T underflows)
    assert all(v <= limit * (1 + 1e-15) for v in values)
    assert all(v < limit for v in values[:10])
    assert values[-1] == pytest.approx(limit, rel=1e-12)
    assert context_length(L_f, lam, 10**6, S) == pytest.approx(limit, rel=1e-12)


def test_eq3_lambda_two():
    assert context_length_limit(1560, 2, 9) == 11 * 1560  # (S + 2) L_f
    assert context_length_limit(1560, 2, 1) == 3 * 1560
    assert context_length(1560, 2, 60, 9) == pytest.approx(11 * 1560)


def test_unpacked_grows_linearly():
    assert unpacked_length(1560, 0, 9) == 9 * 1560
    assert unpacked_length(1560, 100, 9) == 109 * 1560


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name,match", [
    ("td_f16k4_foo_g9", "'foo'"),
    ("td_f16k4zz_g9", "'zz'"),
    ("td_f16k4f4k2", "exactly one generated part 'gN', found 0"),
    ("f1k1_g4_g4", "exactly one generated part 'gN', found 2"),
    ("f1k1_gx", "'gx'"),
    ("f0k1_g4", "f0k1"),
    ("f2k3_g4", "k3"),
    ("f2k1h3w2_g4", "ph=3"),
    ("", "empty"),
    ("f1k1__g4", "empty part"),
    ("td_f1k1_g4_td", "both sides"),
    ("f1k1_td_g4", "'td'"),
    ("f1k1_x_f1k1_x_f1k1_g4", "at most one skip"),
    ("g0", "g0"),
])
def test_parse_errors_name_the_part(name, match):
    with pytest.raises(ValueError, match=match):
        parse(name)


def test_parse_error_shows_grammar():
    with pytest.raises(ValueError, match="grammar"):
        parse("f1k1_g4_bogus")


@pytest.mark.parametrize("lam", [1, 0.5, 0, -2, float("inf"), float("nan")])
def test_lambda_must_exceed_one(lam):
    with pytest.raises(ValueError, match="lambda"):
        context_length(1560, lam, 3, 9)
    with pytest.raises(ValueError, match="lambda"):
        context_length_limit(1560, lam, 9)
    with pytest.raises(ValueError, match="lambda"):
        frame_length(1560, lam, 1)


def test_eq_argument_errors():
    with pytest.raises(ValueError, match="T "):
        context_length(1560, 2, -1, 9)
    with pytest.raises(ValueError, match="S "):
        context_length(1560, 2, 3, 0)
    with pytest.raises(ValueError, match="S "):
        context_length_limit(1560, 2, 0)
    with pytest.raises(ValueError, match="L_f"):
        context_length(0, 2, 3, 9)
    with pytest.raises(ValueError, match="frame index"):
        frame_length(1560, 2, -1)


def test_constructor_errors():
    with pytest.raises(ValueError, match="at least one frame"):
        Block(0, K1)
    with pytest.raises(ValueError, match="g0"):
        Schedule(0)
    with pytest.raises(ValueError, match="'tz'"):
        Schedule(4, tail="tz")
    with pytest.raises(ValueError, match="tail_side"):
        Schedule(4, tail_side="up")
    with pytest.raises(ValueError, match="skip"):
        Side(far=(Block(1, K1),))


def test_schedules_are_hashable_values():
    assert hash(parse("f1k1_x_g9_f1k1f2k2f16k4_td")) == hash(parse("f1k1h2w2_x_g9_f1k1f2k2f16k4_td"))
    assert math.isclose(context_length(1, 2, 1, 1), 2.0)


# ------------------------------------------------------------------ one kernel parser, caps
@pytest.mark.parametrize("name,size", [("k1", (1, 2, 2)), ("k2", (2, 4, 4)), ("k8", (8, 16, 16)),
                                       ("k1h4w8", (1, 4, 8)), ("k1h2w2", (1, 2, 2)), ("k16h32w32", (16, 32, 32))])
def test_parse_kernel(name, size):
    assert parse_kernel(name).size == size
    assert as_kernel(name) == parse_kernel(name) == as_kernel(parse_kernel(name))
    assert parse_kernel(parse_kernel(name).name) == parse_kernel(name)


@pytest.mark.parametrize("name,match", [("k3", "k3"), ("k", "cannot read kernel name 'k'"), ("k1h4", "kNhHwW"),
                                        ("f1k1", "cannot read"), ("k1h3w2", "ph=3"), ("k64", "at most 32"),
                                        ("k1h2w128", "pw=128 is larger than 64"), ("k99999", "larger than"),
                                        (2, "cannot read kernel name 2")])
def test_parse_kernel_errors(name, match):
    with pytest.raises(ValueError, match=match):
        parse_kernel(name)


def test_the_schedule_parser_reads_kernels_with_parse_kernel(monkeypatch):
    import framepack_lab.schedule as schedule_module

    seen = []
    monkeypatch.setattr(schedule_module, "parse_kernel", lambda name: seen.append(name) or Kernel.k(1))
    schedule_module.parse("td_f16k4f2k1h4w4_g4")
    assert seen == ["k4", "k1h4w4"]


def test_grammar_caps():
    assert MAX_FRAMES == 1024 and MAX_KERNEL_SIZE == 64
    parse(f"f{MAX_FRAMES}k1_g{MAX_FRAMES}")
    with pytest.raises(ValueError, match="at most 1024 frames"):
        parse("f1025k1_g4")
    with pytest.raises(ValueError, match="at most 1024 frames"):
        parse("f1k1_g1025")
    with pytest.raises(ValueError, match="larger than the grammar accepts"):
        parse("f1k1_g100000")
    with pytest.raises(ValueError, match="at most 1024 frames"):
        Block(MAX_FRAMES + 1, K1)
    with pytest.raises(ValueError, match="at most 1024 frames"):
        Schedule(MAX_FRAMES + 1)
    with pytest.raises(ValueError, match="larger than 64"):
        Kernel(128, 2, 2)


@pytest.mark.parametrize("bad", [None, 3, b"g4", ["g4"]])
def test_parse_refuses_non_strings(bad):
    with pytest.raises(ValueError, match="grammar"):
        parse(bad)


def test_tail_token_rule_lives_in_one_function():
    for tail, n, want in [(None, 5, 0), ("td", 5, 0), ("ta", 5, 5), ("tc", 5, 1), ("tc", 0, 0), ("ta", 0, 0)]:
        assert tail_token_count(tail, n) == want
        if tail:
            assert parse(f"{tail}_f1k1_g4").tail_tokens(n) == want
    with pytest.raises(ValueError, match="tail_frames"):
        tail_token_count("ta", -1)


def test_a_schedule_without_tail_has_no_tail_side():
    s = Schedule(4, left=Side(near=(Block(1, K1),)), tail=None, tail_side="right")
    assert s.tail_side == "left" and s == parse("f1k1_g4") and parse(s.name) == s


def test_preset_descriptions_that_compare_token_counts_hold():
    # level_duplication's description says it is not fewer tokens than the geometric progression
    # at the tiny model's 16x16 latents; temporal_kernel's that it has 2 frames at 1x and 4 at 2x
    from framepack_lab.presets import PRESETS

    assert PRESETS["level_duplication"].schedule.token_count(16, 16) >= PRESETS["geometric"].schedule.token_count(16, 16)
    assert "f4k2f2k1" in PRESETS["temporal_kernel"].name and "f1k1f2k2f16k4" in PRESETS["inverted_official_history"].name
