"""The execution verifier: nothing reaches a kernel before it passed every stage.

Stages, in order (the verifier stops at the first failure): compile (clang-19, all warnings),
lint (our own rules on the source), kernel-verifier (the kernel's BPF verifier, loaded in the
sandbox without attaching), dynamic (attached under a stress suite, watched by probes), and
performance (A/B against the kernel's scheduler on a benchmark of the policy's class).
docs/verify.md describes each stage, its rules and bounds.
"""
