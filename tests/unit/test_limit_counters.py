"""limit-count's counters across a reload: which tables a configuration carries, and which of
their counters belong to the current window."""

from gateway_agent import limit_counters


def test_a_configuration_names_its_counter_tables_by_window_and_scope():
    config = "\n".join(
        [
            "global",
            *limit_counters.table_section(3600, "consumer"),
            *limit_counters.table_section(60, "client_ip"),
            "peers usage",
            "    disabled",
        ]
    )
    assert limit_counters.tables_of(config) == [
        limit_counters.CounterTable("rl_3600s_consumer/counts", 3600),
        limit_counters.CounterTable("rl_60s_client_ip/counts", 60),
    ]


def test_only_the_current_windows_counters_are_carried():
    shown = "\n".join(
        [
            "# table: rl_60s_route/counts, type: string, size:1048576, used:3",
            "0x55d7: key=29000000:7 use=0 exp=59000 gpc0=4",
            "0x55d8: key=28999999:7 use=0 exp=1000 gpc0=60",
            "0x55d9: key=29000000:8:alice@example.com use=0 exp=59000 gpc0=1",
        ]
    )
    counters = limit_counters.parse_counters(shown)
    assert counters == {"29000000:7": 4, "28999999:7": 60, "29000000:8:alice@example.com": 1}
    now = 29000000 * 60 + 30
    assert limit_counters.current(counters, 60, now) == {"29000000:7": 4, "29000000:8:alice@example.com": 1}
