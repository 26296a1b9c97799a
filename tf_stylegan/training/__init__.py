"""Training: losses and penalties, the progressive schedule, the train step, the trainer and its gin
configurables."""
