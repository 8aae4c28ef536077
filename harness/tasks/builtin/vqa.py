"""VQA v2: open-ended questions on COCO images, scored by the official VQA accuracy."""

from harness.tasks import ACCURACY_POINT, Display, Option, TaskCard, register

CARD = register(
    TaskCard(
        name="vqa",
        position=0,
        evaluate_help="official VQA accuracy",
        evaluate_options=(
            Option("--questions", "questions_file", "the split's questions json"),
            Option("--annotations", "annotations_file", "the split's annotations json"),
            Option("--results", "results_file", '[{"question_id", "answer"}]'),
        ),
        train_split="train2014",
        eval_split="val2014",
        context_length=16,
        # from the pre-trained model: 87.0 after 750 steps, 88.3 after 1,000 (2 CPU cores)
        teacher_steps=1000,
        # 400, not 800: in a pilot of 8 paired seeds (README, "Sizing the studies") the
        # optima - uniform difference spread 0.85 points at the end of a 400-step schedule
        # and 3.91 at the end of an 800-step one, whose runs part ways after step 400
        student_steps=400,
        # 5 paired seeds, not 8: the 8-seed study under teacher-variance measured sigma_d 0.27
        # (half-width 0.34 expected from 5 seeds, far inside the 1.5 asked), and 5 keep the
        # study inside 15 minutes on 2 cores with its teacher (README, "Sizing the studies")
        seeds="0-4",
        tokenizer_corpus=True,
        display=Display(
            "VQA v2",
            tuple((t, ("perAnswerType", t)) for t in ("yes/no", "number", "other")),
            point=ACCURACY_POINT,
        ),
    )
)
