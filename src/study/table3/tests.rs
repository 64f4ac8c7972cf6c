use super::*;

#[test]
fn rates_are_chosen_by_validation_loss_per_seed() {
    let p = |seed, lr, valid_loss| SearchPoint {
        seed,
        lr,
        valid_loss,
        best_epoch: 1,
        chosen: false,
    };
    let points = [
        p(0, 1e-4, 0.50),
        p(0, 1e-3, 0.40),
        p(0, 3e-3, f64::NAN),
        p(1, 1e-4, 0.30),
        p(1, 1e-3, 0.30),
        p(1, 3e-3, 0.90),
    ];
    assert_eq!(
        choose_rates(&points),
        vec![1, 3],
        "lowest loss; the smaller rate on a tie"
    );
    assert!(choose_rates(&[p(0, 1e-3, f64::INFINITY)]).is_empty());
}

#[test]
fn presets_and_quick_epochs() {
    let cfg = CompareConfig {
        data: "x.csv".into(),
        table: TableOptions::default(),
        init: InitFrom::Random(Box::new(Config::tiny())),
        seeds: vec![0],
        task: Task::Regression,
        binarize: None,
        full: FinetuneConfig::default(),
        lora: LoraConfig::default(),
        epochs: None,
        peft_epochs: None,
        quick: false,
        lr_search: Vec::new(),
        search_patience: None,
    };
    let m = cfg.methods();
    let got: Vec<(String, usize, f64)> =
        m.iter().map(|m| (m.name.clone(), m.epochs, m.lr)).collect();
    assert_eq!(got[1], ("bitfit".into(), 30, 2e-5));
    assert_eq!(got[2], ("lora".into(), 20, 1e-5));
    assert_eq!(got[3], ("ia3".into(), 20, 5e-6));
    let quick = CompareConfig { quick: true, ..cfg };
    assert_eq!(quick.methods()[1].epochs, 3);
    let peft_only = CompareConfig {
        peft_epochs: Some(1),
        ..quick
    };
    let e: Vec<usize> = peft_only.methods().iter().map(|m| m.epochs).collect();
    assert_eq!(e, [2, 1, 1, 1]);
    assert_eq!(human(294912), "294,912");
    assert_eq!(
        windowed(&[(1.0, 1.0), (2.0, 3.0), (3.0, 5.0)], 2),
        vec![(2.0, 2.0), (3.0, 5.0)]
    );
}
