"""The one catalogue of sources the clinical rules cite, and the register of every rule's code.

Each rule that can refuse or flag has a stable code (`"rems_enrolment_missing"`), a message that says
what to do, and a citation: where the rule comes from, in plain words a clinician can check (the label
and its section, a guideline, a paper, or "clinic setting" with the setting's name), with a link where
one exists. The sources live here once; each app's rules register their codes with `register` beside
the rules themselves, so a code always carries the same citation whether a page, the API or a task
refuses with it (`kaemdr.exceptions.Refusal` looks the citation up by code).

No internal file names and no web-site nicknames: what a user sees is a bibliography entry. Facts whose
sources disagree are clinic settings with a sourced default (`clinic_setting`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One reference: a label, a guideline, a paper or a standard, with its address where it has one."""

    title: str
    url: str = ""

    def at(self, where: str = "") -> Citation:
        """This source at one place in it (a section, a table, a page), as a citation."""
        return Citation((Reference(self, where),))


@dataclass(frozen=True)
class Reference:
    source: Source
    where: str = ""

    @property
    def text(self) -> str:
        return f"{self.source.title}, {self.where}" if self.where else self.source.title


@dataclass(frozen=True)
class Citation:
    """Where a rule comes from: one or more references, read as one line ("A, section 4; B")."""

    references: tuple[Reference, ...]

    def __add__(self, other: Citation) -> Citation:
        return Citation(self.references + other.references)

    def __str__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return bool(self.references)

    @property
    def text(self) -> str:
        return "; ".join(reference.text for reference in self.references)

    @property
    def url(self) -> str:
        """The first reference's address, for the one link an error message carries."""
        return next((reference.source.url for reference in self.references if reference.source.url), "")

    def as_dict(self) -> dict[str, str]:
        return {"source": self.text, "source_url": self.url}


CLINIC_SETTING = Source("Clinic setting")


def clinic_setting(name: str, default_from: Citation | None = None) -> Citation:
    """A limit the clinic sets (`name` is the setting as the settings page calls it), with the source
    of its default where sources gave one."""
    citation = CLINIC_SETTING.at(name)
    return citation + default_from if default_from else citation


# --- Esketamine: the label, its REMS and its risk-minimisation materials ---------------------------------

SPRAVATO_US_PI = Source(
    "Spravato (esketamine) US prescribing information",
    "https://www.janssenlabels.com/package-insert/product-monograph/prescribing-information/SPRAVATO-pi.pdf",
)
SPRAVATO_SMPC = Source(
    "Spravato summary of product characteristics (EU/UK)",
    "https://www.ema.europa.eu/en/documents/product-information/spravato-epar-product-information_en.pdf",
)
SPRAVATO_UK_RMM = Source(
    "Spravato risk-minimisation materials (UK): healthcare professional guide and Readiness to Leave "
    "checklist",
    "https://www.medicines.org.uk/emc/rmm/1718/Document",
)
SPRAVATO_REMS = Source(
    "Spravato REMS (FDA REMS 386)",
    "https://www.accessdata.fda.gov/scripts/cder/rems/index.cfm?event=IndvRemsDetails.page&REMS=386",
)
SPRAVATO_PMF = Source("Spravato REMS Patient Monitoring Form", "https://www.spravatorems.com/")
SPRAVATO_PHASE3 = Source(
    "Spravato phase-3 trial exclusions (Janssen Medical Information: cardiovascular and cerebrovascular "
    "conditions)",
    "https://www.jnjmedicalconnect.com/",
)

# --- Racemic ketamine --------------------------------------------------------------------------------

SANACORA_2017 = Source(
    "Sanacora et al. 2017, A consensus statement on the use of ketamine in the treatment of mood disorders "
    "(APA), JAMA Psychiatry 74(4):399-405",
    "https://doi.org/10.1001/jamapsychiatry.2017.0080",
)
ANDRADE_2017_DOSE = Source(
    "Andrade 2017, Ketamine for depression, 4: in what dose, at what rate, by what route, for how long, and "
    "at what frequency?, J Clin Psychiatry 78(7):e852-e857",
    "https://doi.org/10.4088/JCP.17f11738",
)
ANDRADE_2017_INTERACTIONS = Source(
    "Andrade 2017, Ketamine for depression, 5: potential pharmacokinetic and pharmacodynamic drug "
    "interactions, J Clin Psychiatry 78(7):e858-e861",
    "https://doi.org/10.4088/JCP.17f11802",
)
ORAL_KETAMINE_REVIEW = Source(
    "Andrade 2019, Oral ketamine for depression, 2: practical considerations, J Clin Psychiatry 80(2)",
    "https://doi.org/10.4088/JCP.19f12838",
)
CHILUKURI_2014 = Source(
    "Chilukuri et al. 2014, Acute antidepressant effects of intramuscular versus intravenous ketamine, "
    "Indian J Psychol Med 36(1):71-76",
    "https://doi.org/10.4103/0253-7176.127258",
)
LARA_2013 = Source(
    "Lara, Bisol and Munari 2013, Antidepressant, mood stabilizing and procognitive effects of very low dose "
    "sublingual ketamine in refractory unipolar and bipolar depression, Int J Neuropsychopharmacol "
    "16(9):2111-2117",
    "https://doi.org/10.1017/S1461145713000485",
)
VERAART_2021 = Source(
    "Veraart et al. 2021, Pharmacodynamic interactions between ketamine and psychiatric medications used in "
    "the treatment of depression: a systematic review, Int J Neuropsychopharmacol 24(10):808-831",
    "https://doi.org/10.1093/ijnp/pyab039",
)
PSYON_EXCLUSIONS = Source(
    "Psyon ketamine clinic exclusion criteria", "https://www.psyon.cz/en/faq/exclusion-criteria/"
)
KETAMINE_INTAKE_TRIAGE = Source("Ketamine clinic intake triage (clinic protocol, secondary source)")
CLINIC_CONSENT = Source("Ketamine clinic consent forms (pregnancy excludes treatment)")
DISCHARGE_ADVICE = Source(
    "Ketamine infusion discharge instructions (Nervana Medical)",
    "https://www.nervanamedical.com/s/ketaminedischarge",
)
KETAMINE_CYSTITIS = Source(
    "Chu et al. 2008, Street ketamine-associated bladder dysfunction, BJU Int 102(11):1616-1622",
    "https://doi.org/10.1111/j.1464-410X.2008.07920.x",
)
FDA_GABAPENTINOIDS = Source(
    "FDA Drug Safety Communication, 19 December 2019: serious breathing difficulties with gabapentin and "
    "pregabalin taken with CNS depressants",
    "https://www.fda.gov/drugs/drug-safety-and-availability/"
    "fda-warns-about-serious-breathing-problems-seizure-and-nerve-pain-medicines-gabapentin-neurontin",
)
MHRA_GABAPENTINOIDS = Source(
    "MHRA Drug Safety Update, October 2017: gabapentin and risk of respiratory depression",
    "https://www.gov.uk/drug-safety-update/gabapentin-neurontin-risk-of-severe-respiratory-depression",
)

# --- Blood pressure ------------------------------------------------------------------------------------

ESC_ESH_2018 = Source(
    "Williams et al. 2018 ESC/ESH Guidelines for the management of arterial hypertension, Eur Heart J "
    "39(33):3021-3104",
    "https://doi.org/10.1093/eurheartj/ehy339",
)
ACC_AHA_2017 = Source(
    "Whelton et al. 2017 ACC/AHA Guideline for high blood pressure in adults, Hypertension 71(6):e13-e115",
    "https://doi.org/10.1161/HYP.0000000000000065",
)
DEL_SANT_2020 = Source(
    "Del Sant et al. 2020, subcutaneous esketamine for depression: blood pressure over 90 minutes of "
    "monitoring"
)
SZARMACH_2020 = Source(
    "Szarmach et al. 2020, blood pressure and heart rate after ketamine infusion, Neuropsychiatr Dis "
    "Treat 16",
    "https://doi.org/10.2147/NDT.S273287",
)
YIP_2022 = Source(
    "Yip et al. 2022, managing blood pressure during ketamine treatment",
    "https://pmc.ncbi.nlm.nih.gov/articles/PMC9556663/",
)

# --- Monitoring, sedation and discharge ------------------------------------------------------------------

RCEM_SEDATION = Source(
    "Royal College of Emergency Medicine, procedural sedation: recovery and discharge criteria",
    "https://www.rcemlearning.co.uk/modules/procedural-sedation-in-emergency-medicine-2018/lessons/safe-practice/"
    "topic/recovery-discharge/",
)
MOAAS = Source(
    "Chernik et al. 1990, Modified Observer's Assessment of Alertness/Sedation scale, J Clin Psychopharmacol "
    "10(4):244-251",
    "https://doi.org/10.1097/00004714-199008000-00003",
)
CADSS = Source(
    "Bremner et al. 1998, Clinician-Administered Dissociative States Scale, J Trauma Stress 11(1):125-136",
    "https://doi.org/10.1023/A:1024465317902",
)
BPRS = Source(
    "Overall and Gorham 1962, The Brief Psychiatric Rating Scale, Psychol Rep 10:799-812",
    "https://doi.org/10.2466/pr0.1962.10.3.799",
)
FASTING_GUIDANCE = Source(
    "Ketamine clinic treatment-day instructions: fasting and a driver (secondary source)"
)
NMC_CODE = Source(
    "NMC, The Code: professional standards of practice and behaviour (2018)",
    "https://www.nmc.org.uk/standards/code/",
)
GMC_RECORDS = Source(
    "GMC, Good medical practice (2024): keeping records", "https://www.gmc-uk.org/professional-standards/"
)

# --- Outcome measures ----------------------------------------------------------------------------------

PHQ9 = Source(
    "Kroenke, Spitzer and Williams 2001, The PHQ-9, J Gen Intern Med 16(9):606-613",
    "https://doi.org/10.1046/j.1525-1497.2001.016009606.x",
)
GAD7 = Source(
    "Spitzer et al. 2006, A brief measure for assessing generalized anxiety disorder: the GAD-7, Arch Intern "
    "Med 166(10):1092-1097",
    "https://doi.org/10.1001/archinte.166.10.1092",
)
PCL5 = Source(
    "Weathers et al. 2013, The PTSD Checklist for DSM-5 (PCL-5), National Center for PTSD; cut-off 31-33 "
    "(Bovin et al. 2016, Psychol Assess 28(11):1379-1391)",
    "https://www.ptsd.va.gov/professional/assessment/adult-sr/ptsd-checklist.asp",
)
DES2 = Source(
    "Carlson and Putnam 1993, An update on the Dissociative Experiences Scale, Dissociation 6(1):16-27",
    "https://scholarsbank.uoregon.edu/xmlui/handle/1794/1539",
)
CSSRS = Source(
    "Posner et al. 2011, The Columbia-Suicide Severity Rating Scale, Am J Psychiatry 168(12):1266-1277",
    "https://doi.org/10.1176/appi.ajp.2011.10111704",
)
MADRS = Source(
    "Montgomery and Asberg 1979, A new depression scale designed to be sensitive to change, Br J Psychiatry "
    "134:382-389; severity bands after Snaith et al. 1986",
    "https://doi.org/10.1192/bjp.134.4.382",
)
FIELD_TRIP_KAP = Source(
    "Ketamine-assisted psychotherapy outcomes study, ClinicalTrials.gov NCT05604794: follow-up at 1, 3 and "
    "6 months",
    "https://clinicaltrials.gov/study/NCT05604794",
)
INTEGRATION_WINDOW_GUIDANCE = Source(
    "Lumin Health, The neuroplasticity window: what to do after ketamine therapy (clinic guidance, a "
    "secondary source; others give 24 to 72 hours)",
    "https://www.lumin.health/blog/the-neuroplasticity-window-what-to-do-after-ketamine-therapy",
)

# --- EMDR ----------------------------------------------------------------------------------------------

SHAPIRO_2018 = Source(
    "Shapiro 2018, Eye Movement Desensitization and Reprocessing (EMDR) Therapy: basic principles, protocols "
    "and procedures, 3rd edition (the eight phases and the three-pronged protocol)"
)
CLOITRE_2012 = Source(
    "Cloitre et al. 2012, ISTSS expert consensus treatment guidelines for complex PTSD in adults "
    "(phase-based treatment: stabilisation first)",
    "https://istss.org/",
)
KORN_LEEDS_2002 = Source(
    "Korn and Leeds 2002, Preliminary evidence of efficacy for EMDR resource development and installation "
    "in the stabilization phase, J Clin Psychol 58(12):1465-1487",
    "https://doi.org/10.1002/jclp.10099",
)
SIEGEL_1999 = Source(
    "Siegel 1999, The Developing Mind (the window of tolerance); Ogden, Minton and Pain 2006"
)
EMDR_READINESS = Source(
    "Readiness for trauma processing in EMDR: alliance, positive states, dual awareness, dissociation, "
    "no current crisis (PESI clinical guidance)"
)

# --- The pathway itself ------------------------------------------------------------------------------------

STAGED_PATHWAY = Source(
    "The clinic's staged ketamine-assisted EMDR pathway: screening, preparation, dosing, integration, each "
    "gated on the one before"
)


# --- The register of codes -----------------------------------------------------------------------------

_REGISTER: dict[str, Citation] = {}


def register(codes: Mapping[str, Citation]) -> None:
    """Add rule codes and their citations. A code is registered once: the same code with another
    citation is a programming error, caught when the module that registers it is imported."""
    for code, citation in codes.items():
        if not citation:
            raise ValueError(f"Rule code {code!r} has no citation.")
        existing = _REGISTER.get(code)
        if existing is not None and existing != citation:
            raise ValueError(f"Rule code {code!r} is registered twice with different citations.")
        _REGISTER[code] = citation


def citation_for(code: str) -> Citation | None:
    """The citation of the rule with this code, or None for a code that is not a rule (input checks)."""
    return _REGISTER.get(code)


def registered() -> Mapping[str, Citation]:
    """Every registered code and its citation (read-only view, for the catalogue page and tests)."""
    return dict(_REGISTER)


def bibliography() -> list[tuple[Source, list[tuple[str, str]]]]:
    """Every source the registered rules cite, in title order, each with the codes that cite it and
    where in the source (for the page that lists the rules' sources)."""
    cited: dict[Source, list[tuple[str, str]]] = {}
    for code, citation in sorted(_REGISTER.items()):
        for reference in citation.references:
            cited.setdefault(reference.source, []).append((code, reference.where))
    return sorted(cited.items(), key=lambda item: item[0].title.lower())


INPUT_CHECK_CODES: frozenset[str] = frozenset(
    {
        # Django's and DRF's own, and ours for the same kind of check: a value missing, malformed or
        # outside its field's bounds. They say what to enter; they are not clinical rules, so no source.
        "required",
        "invalid",
        "invalid_choice",
        "too_long",
        "null_characters",
        "empty",
        "out_of_range",
        "order",
        "date_order",
        "hours_order",
        "duplicate_day",
        "duplicate_name",
        "diastolic_above_systolic",
        "invalid_dose",
        "anchors",
        "past",
        "too_early",
        "too_far_ahead",
        "future_date_of_birth",
        "implausible_date_of_birth",
        "invalid_time_zone",
        "invalid_prescriber",
        "invalid_therapist",
        "invalid_monitor",
        "invalid_role",
        # Screening: a measure's answer off its scale, a condition not in the catalogue, no action taken.
        "invalid_answer",
        "unknown_condition",
        "alert_action_required",
        # Accounts and sign-in: security, not clinical rules.
        "email_taken",
        "self_deactivation",
        "last_admin",
        "own_account",
        "otp",
        "two_factor_setup",
        "no_device",
        "no_pending_device",
    }
)
"""Codes of input and account checks, which carry no clinical source (the catalogue test proves every
other code a rule can return is registered)."""
