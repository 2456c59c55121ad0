"""Stage 4: what each intent does, and by when it must be done."""
