//! # 딥러닝 기초 개념 · A guide to the concepts of deep learning
//!
//! One short section per concept of an introductory deep-learning course, in the
//! course's order, each with its Korean and English name, what the library computes
//! (the formula where there is one) and a runnable example that asserts a value. Every
//! example here is a doctest: `cargo test -p nn-core --doc guide` runs them all.
//!
//! The table of the same concepts with the API item, the example that shows it at
//! full size and the test that checks it against PyTorch is `docs/concepts.md`.
//!
//! 1. Building blocks: neuron, weight, bias, activation function,
//!    layer, perceptron
//! 2. Training: backpropagation, learning rate, (mini-)batch, epoch, optimization
//!    (GD, Adam), loss function
//! 3. Regularization strategies: early stopping, learning-rate decay, weight decay
//!    (L1, L2), constraints, dropout
//! 4. Transfer learning
//! 5. Convolutional networks: convolution filter, stride, padding, pooling (max,
//!    average)
//! 6. Recurrent networks and attention: RNN, LSTM, GRU, bidirectional RNN, attention,
//!    Transformer
//! 7. Autoencoders and generative models: autoencoder, GAN, DCGAN, CycleGAN
//! 8. Siamese network
//!
//! Every example declares its networks with [`network!`](crate::network) and imports
//! [`prelude`](crate::prelude); data sets are built in place, small enough that the
//! examples train in well under a second.
#![doc = include_str!("basics.md")]
#![doc = include_str!("training.md")]
#![doc = include_str!("regularization.md")]
#![doc = include_str!("cnn.md")]
#![doc = include_str!("sequences.md")]
#![doc = include_str!("generative.md")]
