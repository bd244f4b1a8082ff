"""The evaluation engine under every command that trains: a job, its measurement, the one Tune trainable and
results callback, the result cache, and the runner that starts Ray and runs the Tuner."""
