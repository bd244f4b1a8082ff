import pytest

from nas.search.reward import mnas_reward, parse_flops, parse_flops_target


@pytest.mark.parametrize("text, value", [("400M", 400_000_000), ("0.4G", 400_000_000), ("4e8", 400_000_000),
                                         ("400000000", 400_000_000), ("400m", 400_000_000), (" 1.5B ", 1_500_000_000),
                                         ("600K", 600_000), (400e6, 400_000_000), ("2E9", 2_000_000_000)])
def test_parse_flops(text, value):
    assert parse_flops(text) == value


@pytest.mark.parametrize("text", ["400X", "", "M", "-400M", "0", "0M", "1e-9", "four hundred", "400 MB", "nan", "inf",
                                  True])
def test_parse_flops_rejects(text):
    with pytest.raises(ValueError, match="FLOPs"):
        parse_flops(text)


@pytest.mark.parametrize("text, value", [("b0", "efficientnet_b0"), (" B0 ", "efficientnet_b0"),
                                         ("mnasnet_a1", "mnasnet_a1"), ("MobileNet_V2", "mobilenet_v2"),
                                         ("400M", 400_000_000), (4e8, 400_000_000)])
def test_a_flops_target_is_a_budget_or_a_reference_network(text, value):
    assert parse_flops_target(text) == value


@pytest.mark.parametrize("text", ["b1", "resnet50", "400 MB", "nan", "-400M", ""])
def test_a_flops_target_names_both_forms_when_it_is_neither(text):
    with pytest.raises(ValueError, match=r"expected a number such as 400M.*or a reference network \(b0, "
                                         r"efficientnet_b0, mnasnet_a1, mobilenet_v2\)|must be a positive"):
        parse_flops_target(text)


def test_soft_reward():
    assert mnas_reward(0.8, 400e6, 400e6) == pytest.approx(0.8)
    assert mnas_reward(0.8, 800e6, 400e6) == pytest.approx(0.8 * 2 ** -0.07)
    assert mnas_reward(0.8, 200e6, 400e6) == pytest.approx(0.8 * 0.5 ** -0.07)  # smaller is rewarded
    assert mnas_reward(0.8, 800e6, 400e6, w=-0.15) < mnas_reward(0.8, 800e6, 400e6)


def test_hard_reward():
    assert mnas_reward(0.8, 200e6, 400e6, mode="hard") == pytest.approx(0.8)
    assert mnas_reward(0.8, 400e6, 400e6, mode="hard") == pytest.approx(0.8)
    assert mnas_reward(0.8, 800e6, 400e6, mode="hard") == pytest.approx(0.4)


def test_reward_edge_cases():
    assert mnas_reward(float("nan"), 1e6, 1e6) == 0.0
    assert mnas_reward(0.0, 1e6, 1e6) == 0.0
    with pytest.raises(ValueError, match="mode"):
        mnas_reward(0.5, 1e6, 1e6, mode="medium")
    with pytest.raises(ValueError, match="flops and target must be positive"):
        mnas_reward(0.5, 0, 1e6)
    assert mnas_reward(1.0, 1, 1e12) == pytest.approx((1 / 1e12) ** -0.07)  # tiny: a finite bonus, not nan
