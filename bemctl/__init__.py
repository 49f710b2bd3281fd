"""bemctl: run adapter experiments and decide, with statistics, if a variant beats its baseline."""

__version__ = "0.1.0"


def _check_console_keys(keys: dict[str, str]) -> None:
    # Textual is imported only when there are overrides to check: the CLI stays quick.
    from bemctl.tui.keys import check_overrides

    check_overrides(keys)


def _register() -> None:
    from engine.settings import KEY_CHECKS

    if _check_console_keys not in KEY_CHECKS:
        KEY_CHECKS.append(_check_console_keys)


_register()
