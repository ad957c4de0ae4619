"""Models: loading a checkpoint (Hub id, folder, or the embedded GGUF file, converted once), hardware (bf16)
detection, and the generation speed-ups shared by training, evaluation and the verifier."""
