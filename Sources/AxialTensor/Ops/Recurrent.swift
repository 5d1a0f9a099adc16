/// Recurrent cells with PyTorch's gate layout, composed from differentiable ops (linear,
/// sigmoid, tanh, narrow), so their gradients come from those ops' backwards.

/// One GRU step, as torch.nn.GRUCell (gate order r, z, n):
///   r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
///   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h′ = (1 − z) ⊙ n + z ⊙ h.
/// x: [B, I], h: [B, H], weightIH: [3H, I], weightHH: [3H, H], biases [3H] → h′ [B, H].
public func gruCell(_ x: Tensor, hidden h: Tensor, weightIH: Tensor, weightHH: Tensor,
                    biasIH: Tensor? = nil, biasHH: Tensor? = nil) -> Tensor {
    precondition(weightIH.rank == 2 && weightIH.shape[0] % 3 == 0, "gruCell: weightIH must be [3H, I], got \(weightIH.shape)")
    let H = weightIH.shape[0] / 3
    precondition(weightHH.shape == [3 * H, H], "gruCell: weightHH \(weightHH.shape) != [\(3 * H), \(H)]")
    precondition(h.rank == 2 && h.shape[1] == H && h.shape[0] == x.shape[0], "gruCell: hidden \(h.shape) must be [\(x.shape[0]), \(H)] for input \(x.shape)")
    let gi = linear(x, weight: weightIH, bias: biasIH)
    let gh = linear(h, weight: weightHH, bias: biasHH)
    let r = sigmoid(gi.narrow(axis: 1, start: 0, length: H) + gh.narrow(axis: 1, start: 0, length: H))
    let z = sigmoid(gi.narrow(axis: 1, start: H, length: H) + gh.narrow(axis: 1, start: H, length: H))
    let n = tanh(gi.narrow(axis: 1, start: 2 * H, length: H) + r * gh.narrow(axis: 1, start: 2 * H, length: H))
    return n + z * (h - n)
}

/// One LSTM step, as torch.nn.LSTMCell (gate order i, f, g, o):
///   i = σ(·), f = σ(·), g = tanh(·), o = σ(·) of W_i x + b_i + W_h h + b_h,
///   c′ = f ⊙ c + i ⊙ g,  h′ = o ⊙ tanh(c′).
/// x: [B, I], h, c: [B, H], weightIH: [4H, I], weightHH: [4H, H], biases [4H] → (h′, c′).
public func lstmCell(_ x: Tensor, hidden h: Tensor, cell c: Tensor, weightIH: Tensor, weightHH: Tensor,
                     biasIH: Tensor? = nil, biasHH: Tensor? = nil) -> (hidden: Tensor, cell: Tensor) {
    precondition(weightIH.rank == 2 && weightIH.shape[0] % 4 == 0, "lstmCell: weightIH must be [4H, I], got \(weightIH.shape)")
    let H = weightIH.shape[0] / 4
    precondition(weightHH.shape == [4 * H, H], "lstmCell: weightHH \(weightHH.shape) != [\(4 * H), \(H)]")
    precondition(h.shape == [x.shape[0], H] && c.shape == [x.shape[0], H],
                 "lstmCell: hidden \(h.shape) and cell \(c.shape) must be [\(x.shape[0]), \(H)] for input \(x.shape)")
    let gates = linear(x, weight: weightIH, bias: biasIH) + linear(h, weight: weightHH, bias: biasHH)
    let i = sigmoid(gates.narrow(axis: 1, start: 0, length: H))
    let f = sigmoid(gates.narrow(axis: 1, start: H, length: H))
    let g = tanh(gates.narrow(axis: 1, start: 2 * H, length: H))
    let o = sigmoid(gates.narrow(axis: 1, start: 3 * H, length: H))
    let c2 = f * c + i * g
    return (o * tanh(c2), c2)
}
