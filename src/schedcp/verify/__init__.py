"""The execution verifier: what a policy must pass before it may reach a kernel.

Stages, in order (schedcp.models.verification.STAGES): compile (clang-19), lint (our own
static rules on the BPF C source, lint.py, on clang's AST, ast.py), kernel-verifier (the
kernel's BPF verifier in the sandbox), dynamic (run it and watch for stalls and ejections),
performance (a benchmark gate against the default scheduler). The first failing stage stops
the run, and its findings say what to change.
"""
