"""Properties of the schedule grammar, checked on generated input (hypothesis).

* every schedule built from blocks, kernels, sides and tails has a name that parses back to it;
* any text either parses or raises ``ValueError`` (nothing else), and quickly;
* every plan of a generated schedule is built in bounded time and keeps its invariants.
"""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framepack_lab.plan import ORDERS, make_plan
from framepack_lab.schedule import (
    MAX_FRAMES,
    MAX_KERNEL_SIZE,
    TAIL_OPTIONS,
    Block,
    Kernel,
    Schedule,
    Side,
    as_kernel,
    parse,
    parse_kernel,
)

# no example database on disk, and a per-example time limit: a slow parse is a failure, not a hang
SETTINGS = settings(max_examples=300, deadline=timedelta(seconds=2), database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def powers_of_two(lo: int, hi: int):
    return st.sampled_from([2**i for i in range(hi.bit_length()) if lo <= 2**i <= hi])


kernels = st.one_of(
    powers_of_two(1, MAX_KERNEL_SIZE // 2).map(Kernel.k),  # the paper's kN
    st.builds(Kernel, powers_of_two(1, MAX_KERNEL_SIZE), powers_of_two(2, MAX_KERNEL_SIZE),
              powers_of_two(2, MAX_KERNEL_SIZE)),  # spelled out
)
blocks = st.builds(Block, st.integers(1, MAX_FRAMES), kernels)
block_runs = st.lists(blocks, max_size=4).map(tuple)


@st.composite
def sides(draw):
    far = draw(block_runs)
    skip = bool(far) or draw(st.booleans())
    return Side(near=draw(block_runs), far=far, skip=skip)


def schedule_strategy(max_generated: int = MAX_FRAMES):
    return st.builds(
        Schedule,
        generated=st.integers(1, max_generated),
        left=sides(),
        right=sides(),
        tail=st.sampled_from([None, *TAIL_OPTIONS]),
        tail_side=st.sampled_from(["left", "right"]),
        discrete=st.booleans(),
    )


schedules = schedule_strategy()


@SETTINGS
@given(schedules)
def test_name_parses_back_to_the_schedule(s):
    assert parse(s.name) == s
    assert parse(s.name).name == s.name


@SETTINGS
@given(kernels)
def test_kernel_name_parses_back(k):
    assert parse_kernel(k.name) == k == as_kernel(k.name) == as_kernel(k)


GRAMMAR_ALPHABET = "fkhwgxtdac_+D0123456789"


def parses_or_refuses(text: str) -> None:
    try:
        s = parse(text)
    except ValueError as e:
        assert str(e)  # a message, not an empty error
        return
    assert isinstance(s, Schedule) and parse(s.name) == s


@SETTINGS
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_value_error(text):
    parses_or_refuses(text)


@SETTINGS
@given(st.text(alphabet=GRAMMAR_ALPHABET, max_size=80))
def test_grammar_like_text_parses_or_raises_value_error(text):
    parses_or_refuses(text)


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(["td", "ta", "tc", "x", "g4", "g0", "g", "f1k1", "f16k4f2k2", "k2", "f1k3"]),
                          st.from_regex(r"[fg][0-9]{1,6}(k[0-9]{1,3}(h[0-9]{1,3}w[0-9]{1,3})?)?", fullmatch=True)),
                max_size=8).map("_".join), st.booleans())
def test_token_soup_parses_or_raises_value_error(text, discrete):
    parses_or_refuses(text + ("+D" if discrete else ""))


@settings(max_examples=60, deadline=timedelta(seconds=5), database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(schedule_strategy(max_generated=16), st.sampled_from(ORDERS), st.integers(2, 80))
def test_plans_of_any_schedule_are_built_quickly_and_keep_their_invariants(s, order, n_frames):
    plan = make_plan(order, n_frames, s)
    generated = [f for step in plan.steps for f in step.generated]
    assert sorted(generated) == list(range(1, plan.total_frames))  # every frame once
    known = {0}
    for step in plan.steps:
        assert set(step.context_frames) <= known  # a step sees only frames known before it
        assert len(step.context_frames) == len(set(step.context_frames))  # each known frame used once
        known |= set(step.generated)
    assert all(n > 0 for n in plan.tokens_per_step(16, 16))
