"""Model definitions (dense autoencoder, encoder-only VAE, xgboost BDTs). Arrives with `l1ml train` (issue 3)."""
