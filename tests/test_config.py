"""Configuration parsing and validation."""

import pytest

from quadviz.config import FIELDS, Config, ConfigError, config_from_mapping, parse_field


def test_defaults_are_valid():
    config = Config.create()
    assert config.teacher_rank == round(config.d**config.beta)
    assert config.horizon == pytest.approx(config.lr * config.steps)


@pytest.mark.parametrize(
    "field,value",
    [
        ("d", "-5"),
        ("d", "abc"),
        ("d", "1e10"),
        ("beta", "1"),
        ("alpha", "nan"),
        ("lr", "0"),
        ("lr", "inf"),
        ("width", "2.5"),
        ("seeds", ""),
        ("device", "tpu"),
        ("normalization", "l2"),
        ("sigma0", "-1"),
        ("steps", "x" * 100),
    ],
)
def test_invalid_value_names_field_and_range(field, value):
    with pytest.raises(ConfigError) as info:
        Config.create(**{field: value})
    message = str(info.value)
    assert message.startswith(f"invalid {field}=")
    assert "allowed" in message
    assert info.value.field == field


def test_cross_field_constraints():
    with pytest.raises(ConfigError, match="width"):
        Config.create(d=10, width=20, r=2)
    with pytest.raises(ConfigError, match="invalid r"):
        Config.create(d=10, r=20, width=2)


def test_reduced_method_needs_room_for_wishart():
    """method=reduced is allowed from d = r + width + min(batch, width)."""
    assert Config.create(d=8, r=2, width=5, batch=1, method="reduced").d == 8
    with pytest.raises(ConfigError) as err:
        Config.create(d=11, r=2, width=5, batch=8, method="reduced")
    assert err.value.field == "method"
    assert "min(batch, width) = 12" in str(err.value)


def test_t_max_sets_steps():
    config = Config.create(lr=0.01, t_max=3.0)
    assert config.num_steps == 300
    assert config.horizon == 3.0


def test_mapping_keeps_valid_fields():
    config, errors = config_from_mapping({"d": "-5", "alpha": "1.5", "junk": "1"})
    assert config.alpha == 1.5
    assert config.d == FIELDS["d"].default
    assert [e.field for e in errors] == ["d"]


def test_mapping_resolves_cross_field_error():
    config, errors = config_from_mapping({"d": "8", "width": "64", "r": "2"})
    assert config.d == 8
    assert config.r == 2
    assert config.width == 8
    assert errors[0].field == "width"


def test_parse_field_types():
    assert parse_field("d", "1024") == 1024
    assert parse_field("d", "1e3") == 1000
    assert parse_field("r", "") is None
    assert parse_field("lr", 0.5) == 0.5


def test_memory_limit_rejects_huge_sgd():
    config = Config.create(d=10**6, batch=4096, width=16, seeds=8, method="full")
    with pytest.raises(ConfigError, match="batch"):
        config.check_sgd_memory()
