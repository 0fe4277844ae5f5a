"""Settings of the emulated services that tests change at run time.

One instance per process (``CONFIG``), because moto's backends are process-global too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class HarnessConfig:
    # How long a new model package stays Pending then InProgress before it is Completed
    # (first half Pending, second half InProgress). 0: Completed at once.
    status_delay_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_status_delay(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("statusDelaySeconds: must be a number >= 0")
        with self._lock:
            self.status_delay_seconds = float(seconds)

    def reset(self) -> None:
        self.set_status_delay(0.0)

    def update_from_dict(self, payload) -> None:
        if not isinstance(payload, dict):
            raise ValueError("body: must be a JSON object")
        unknown = set(payload) - {"statusDelaySeconds"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown setting")
        if "statusDelaySeconds" in payload:
            self.set_status_delay(payload["statusDelaySeconds"])

    def to_dict(self) -> dict:
        return {"statusDelaySeconds": self.status_delay_seconds}


CONFIG = HarnessConfig()
