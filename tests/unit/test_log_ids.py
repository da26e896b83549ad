from __future__ import annotations

from datetime import UTC, datetime

from backfill.auth0.log_ids import has_observed_shape, order_key, synthesize, write_time

REAL = "90020211103030609732115389415260839021644201259064885298"


def test_write_time_of_a_real_id() -> None:
    assert write_time(REAL) == datetime(2021, 11, 3, 3, 6, 9, 732115, tzinfo=UTC)
    assert has_observed_shape(REAL)


def test_other_shapes_have_no_write_time() -> None:
    assert write_time("123456789") is None
    assert (
        write_time("90020211303030609732115389415260839021644201259064885298") is None
    )  # month 13
    assert not has_observed_shape("abc")


def test_a_synthesized_id_sorts_before_everything_written_at_or_after_its_second() -> None:
    moment = datetime(2021, 11, 3, 3, 6, 9, 999999, tzinfo=UTC)
    synthetic = synthesize(moment)
    assert len(synthetic) == 56
    assert synthetic < REAL
    assert synthesize(datetime(2021, 11, 3, 3, 6, 10, tzinfo=UTC)) > REAL


def test_order_key_is_numeric_for_decimal_ids() -> None:
    assert order_key("99") < order_key("100")
    assert sorted(["900", "10", "9"], key=order_key) == ["9", "10", "900"]
