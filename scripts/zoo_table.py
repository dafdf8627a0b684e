"""Print the README's zoo table (Markdown) from the model cards in assets/models."""



from vizcore import zoo  # noqa: E402

print("| model | dataset | arch | parameters | test accuracy | macro F1 | training (s, CPU) |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
for e in zoo.list_models(include_user=False):
    m = e.card.metrics
    f1 = sum(r["f1"] for r in m["per_class"]) / len(m["per_class"])
    n = sum(p.numel() for p in zoo.load_model(e).parameters())
    print(f"| `{e.id}` | {e.card.dataset} | {e.card.arch} | {n:,} | {m['accuracy']:.2%} | {f1:.3f} | "
          f"{e.card.train_seconds:.0f} |")
