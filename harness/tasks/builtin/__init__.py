"""The built-in task cards, one module each; `harness.tasks.cards()` imports them all."""
