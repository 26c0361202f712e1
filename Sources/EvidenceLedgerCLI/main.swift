print("evidence-ledger")
