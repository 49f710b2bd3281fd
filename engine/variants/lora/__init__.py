"""Static LoRA: the baseline every variant is compared with."""
