"""NLVR2: is a statement true of a pair of images; accuracy and consistency."""

from harness.tasks import ACCURACY_POINT, Display, TaskCard, csv_options, register

CARD = register(
    TaskCard(
        name="nlvr2",
        position=2,
        evaluate_help="nlvr2 accuracy (CSV identifier,prediction)",
        evaluate_options=csv_options("identifier"),
        eval_split="test1",
        extra_eval_splits=("dev",),
        context_length=20,
        # 79.5 after 1,000 steps, 84.0 after 1,500; a step sees two images (~1.7x a VQA step),
        # so the student gets fewer steps
        teacher_steps=1500,
        # 500: a 240-step schedule (VQA's evidence) was measured on 8 paired seeds: optima
        # 59.6, uniform 62.6 (teacher 82.7), optima - uniform sigma_d 2.24 (half-width 1.87,
        # not the 1.5 asked), both rows still far from the teacher (README, "Sizing the
        # studies", has this study's own spread at 500)
        student_steps=500,
        # 24 paired seeds (the other tasks 8): NLVR2's sigma_d was the largest (4.29 on 8 seeds
        # under the former `none` layer loss); 24 keep the half-width at 1.5 up to sigma_d 3.55.
        # Measured under teacher-variance: sigma_d 3.35, half-width 1.41 (README)
        seeds="0-23",
        tokenizer_corpus=True,
        display=Display(
            "NLVR2",
            (
                ("consistency (%)", ("consistency",)),
                ("dev accuracy (%)", ("splits", "dev", "accuracy")),
            ),
            fractions=(("consistency",), ("splits", "dev", "accuracy")),
            point=ACCURACY_POINT,
        ),
    )
)
