"""The agentic router's core (issue 7), pure torch: no model, task or store code.

- actions: the factorised macro-action space (expert, span, rank budget, bias scale)
- policy: MacroPolicy (one categorical head per component) and ValueNetwork
- hysteresis / plan: chunk-sticky sequence plans, plan-length cap, switch gating
- composition: low-rank expert composition and the Frobenius trust-region projection
- gae / trust_region: AR1's advantages and KL-bounded policy-gradient update
- bc: AR0's behavioural cloning of oracle traces

Nothing here imports `engine.variants` (tests/test_layering.py checks it): the training stages
that drive a `RouterModel` on a task (arm, training, experts, oracle, pg, data, and the gate
measures) live with the model in `engine.variants.router`, which imports this package.
"""
