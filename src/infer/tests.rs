use super::*;

#[test]
fn predictor_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Predictor>();
}

#[test]
fn batches_group_similar_lengths() {
    let seqs = vec![vec![0u32; 3], vec![0; 9], vec![0; 4], vec![0; 8]];
    assert_eq!(
        length_sorted_batches(&seqs, 2),
        vec![vec![1, 3], vec![2, 0]]
    );
}
