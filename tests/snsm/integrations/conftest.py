def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes tens of seconds but runs by default (deselect: -m 'not slow')")
