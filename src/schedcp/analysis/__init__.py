"""Workload Analysis Engine: run or attach to a workload, measure how it uses the CPU, and
describe it in a WorkloadProfile a person or an LLM can act on."""
