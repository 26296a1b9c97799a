"""The networks: tensor ops, StyleGAN layers, the mapping, synthesis, generator and discriminator, dtype
policies."""
