"""Generates lead_scoring.csv: a synthetic, seeded B2B lead-scoring table.

Run `python3 make_lead_scoring.py > lead_scoring.csv`; the output is byte-for-byte
reproducible (Python's `random` with a fixed seed). The columns mix numeric and
categorical features so the bundled quickstart exercises scaling and one-hot encoding.
"""
import csv, math, random, sys

rng = random.Random(20261123)
sources = ["organic", "paid_search", "referral", "webinar", "cold_email"]
industries = ["software", "retail", "finance", "health", "manufacturing"]
source_lift = {"organic": 0.3, "paid_search": 0.0, "referral": 1.0, "webinar": 0.7, "cold_email": -1.0}
industry_lift = {"software": 0.5, "retail": -0.4, "finance": 0.3, "health": 0.0, "manufacturing": -0.2}

w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["lead_id", "source", "industry", "pages_viewed", "minutes_on_site",
            "emails_opened", "company_size", "days_since_signup", "converted"])
for i in range(1, 1201):
    source = rng.choice(sources)
    industry = rng.choice(industries)
    pages = max(0, int(rng.gauss(6, 4)))
    minutes = round(max(0.0, rng.gauss(9, 6) + 0.6 * pages), 1)
    emails = max(0, int(rng.gauss(3, 2.5)))
    size = int(math.exp(rng.gauss(4, 1.3)))
    days = rng.randint(0, 120)
    z = (-3.2 + 0.22 * pages + 0.08 * minutes + 0.35 * emails + 0.15 * math.log1p(size)
         - 0.012 * days + source_lift[source] + industry_lift[industry] + rng.gauss(0, 0.6))
    converted = "yes" if rng.random() < 1 / (1 + math.exp(-z)) else "no"
    w.writerow([f"L{i:05d}", source, industry, pages, minutes, emails, size, days, converted])
