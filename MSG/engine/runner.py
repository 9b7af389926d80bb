"""mmengine's Runner with a short start-up log.

mmengine logs the whole environment, the resolved config (~300 lines) and the hook table (~100 lines)
before the first iteration; the config is also saved in the work dir and in every checkpoint, so by
default :class:`QuietRunner` logs one line instead. ``log_verbose=True`` in the config (``--verbose``
of ``tools/train.py`` / ``tools/test.py``) restores mmengine's full log.
"""
from __future__ import annotations

from mmengine.runner import Runner


class QuietRunner(Runner):
    """:class:`mmengine.runner.Runner` whose environment/config/hook dumps are one line unless
    ``cfg.log_verbose``."""

    def _verbose(self) -> bool:
        return bool(self.cfg.get("log_verbose", False))

    def _log_env(self, env_cfg: dict) -> None:
        if self._verbose():
            super()._log_env(env_cfg)
            return
        self.logger.info(f"seed: {self._seed}  Distributed launcher: {self._launcher}  world_size: "
                         f"{self._world_size}  work_dir: {self.work_dir} (the full config is saved there and in "
                         "each checkpoint; --verbose logs it)")

    def get_hooks_info(self) -> str:
        return super().get_hooks_info() if self._verbose() else "(the hook table: --verbose)"
