"""Models: the networks (dense autoencoder, encoder-only VAE; float and QKeras), xgboost BDTs and the types of their
firmware, and Keras/QKeras loading and saving in one place (`keras`)."""
