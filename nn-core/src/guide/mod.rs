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
//! 1. [신경망의 구성 요소 · Building blocks](#1-신경망의-구성-요소--building-blocks):
//!    neuron, weight, bias, activation function, layer, perceptron
//! 2. [학습 · Training](#2-학습--training): backpropagation, learning rate,
//!    (mini-)batch, epoch, optimization (GD, Adam), loss function
//! 3. [학습 규제 전략 · Regularization strategies](#3-학습-규제-전략--regularization-strategies):
//!    early stopping, learning-rate decay, weight decay (L1, L2), constraints, dropout
//! 4. [전이 학습 · Transfer learning](#4-전이-학습--transfer-learning)
//! 5. [합성곱 신경망 · Convolutional networks](#5-합성곱-신경망--convolutional-networks-cnn):
//!    convolution filter, stride, padding, pooling (max, average)
//! 6. [순환 신경망과 어텐션 · Recurrent networks and attention](#6-순환-신경망과-어텐션--recurrent-networks-and-attention):
//!    RNN, LSTM, GRU, bidirectional RNN, attention, Transformer
//! 7. [오토인코더와 생성 모델 · Autoencoders and generative models](#7-오토인코더와-생성-모델--autoencoders-and-generative-models):
//!    autoencoder, GAN, DCGAN, CycleGAN
//! 8. [샴 네트워크 · Siamese network](#8-샴-네트워크--siamese-network)
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
