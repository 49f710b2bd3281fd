"""The agentic router's core (issue 7), pure torch: no model, task or store code.

- actions: the factorised macro-action space (expert, span, rank budget, bias scale)
- policy: MacroPolicy (one categorical head per component) and ValueNetwork
- hysteresis / plan: chunk-sticky sequence plans, plan-length cap, switch gating
- composition: low-rank expert composition and the Frobenius trust-region projection
- gae / trust_region: AR1's advantages and KL-bounded policy-gradient update
- bc: AR0's behavioural cloning of oracle traces

The training stages (training, experts, oracle, pg, data) are the exception: they drive a
`RouterModel` on a task (teacher-forced experts, oracle traces, AR0, AR1), still without any
store or runner code.
"""
