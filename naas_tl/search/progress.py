"""Progress bars (tqdm) that can be switched off."""
from __future__ import annotations


class _NoBar:
    def update(self, n):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def progress_bar(enabled: bool, total: int, initial: int = 0, unit: str = "design",
              desc: str | None = None):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)
