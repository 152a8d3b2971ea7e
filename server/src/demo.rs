//! Demo data: a small, realistic prefecture for `caresync serve --demo`.
//!
//! One district of Zaozhuang with two townships and seven villages, an account for each
//! role, the child ledgers of every village with about six months of home visits in mixed
//! review states, and the elders of the first township with their service logs. The data
//! is built from a fixed seed, so every call with the same `today` gives the same bytes:
//! screenshots, manuals and tests can rely on it.
//!
//! Every document is written the way devices write them: an automerge document whose
//! changes are made by the account that made each edit (the director records a visit, the
//! reviewer reviews it, the director answers), so that the access rules accept every
//! change and the history reads like a real one.

use std::collections::BTreeMap;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, ChangeHash};
use caresync_core::domain::{
    Account, AccountId, CHINA_OFFSET_MILLIS, CareNeedsLevel, CheckStatus, Checklist, ChecklistItem,
    Child, ChildCategory, Comment, Confirmation, ConfirmationMethod, Date, DocumentMeta,
    DomainError, DurationOverride, Elder, Gender, Guardian, GuardianRelation, HomeVisit, Millis,
    OrgLevel, OrgUnit, OrgUnitCode, Record, RecordStatus, Referral, ReportRow, Review, Risk,
    RiskLevel, Role, ServiceLog, ServiceType, SubjectId, SubjectStatus, YearMonth, report_row,
};
use caresync_core::protocol::DocumentId;
use caresync_core::sync::StoredChange;
use caresync_core::validation::validate;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// The password of every demo account. The demo is for trying the product out; it must
/// never be installed on a relay that holds real records.
pub const DEMO_PASSWORD: &str = "demo-password";

/// The seed of the demo: changing it changes every name, id and time.
const SEED: u64 = 0x0CA2_E5C0_2024_0370;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// How far back visits go: about six months.
const VISIT_WINDOW_DAYS: i64 = 182;
/// How far back service logs go: about four months.
const LOG_WINDOW_DAYS: i64 = 120;
/// Records younger than this are mostly not reviewed yet.
const REVIEW_DELAY_DAYS_MAX: i64 = 7;

/// The demo prefecture: org units (parents first), accounts and documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoData {
    pub units: Vec<OrgUnit>,
    pub accounts: Vec<DemoAccount>,
    pub documents: Vec<DemoDocument>,
}

/// A demo account and its password (always [`DEMO_PASSWORD`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoAccount {
    pub account: Account,
    pub password: &'static str,
}

/// One document as the relay stores it: its change rows, heads, recorded metadata and
/// report row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoDocument {
    pub id: DocumentId,
    pub meta: DocumentMeta,
    pub changes: Vec<StoredChange>,
    pub heads: Vec<ChangeHash>,
    pub report: ReportRow,
}

/// Why the demo data could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Boxed: automerge's errors are large, and every builder function returns this.
    #[error("a demo record could not be written: {0}")]
    Domain(#[source] Box<DomainError>),
    #[error("the demo record {document} breaks the rules: {detail}")]
    Invalid { document: String, detail: String },
    #[error("demo data cannot be built for {0}: the dates would leave the calendar")]
    DateOutOfRange(Date),
}

impl From<DomainError> for DemoError {
    fn from(error: DomainError) -> Self {
        DemoError::Domain(Box::new(error))
    }
}

/// The actor id of every change an account makes in the demo: derived from the account id,
/// so that a document's history shows who made each edit, as on real devices.
pub fn demo_actor(account: &AccountId) -> ActorId {
    let digest = Sha256::digest(format!("caresync-demo-actor:{account}").as_bytes());
    ActorId::from(digest.get(..16).unwrap_or_default().to_vec())
}

/// Builds the demo prefecture as of `today` (a China date): every time lies before the
/// start of `today`, and visits fall due relative to it.
pub fn demo_data(today: Date) -> Result<DemoData, DemoError> {
    demo_data_sized(today, None)
}

/// The demo prefecture with the first village's ledger (the `demo-director` account's)
/// grown to exactly `records` documents, children and their home visits. The benchmark of
/// the web app's cold open (design §4) needs thousands of records on one phone, far more
/// than a real village holds; everything else is the ordinary demo.
pub fn demo_data_with_village_records(today: Date, records: usize) -> Result<DemoData, DemoError> {
    demo_data_sized(today, Some(records))
}

fn demo_data_sized(
    today: Date,
    first_village_records: Option<usize>,
) -> Result<DemoData, DemoError> {
    let mut builder = Builder {
        rng: SmallRng::seed_from_u64(SEED),
        today,
        today_days: today.days_since_epoch(),
        documents: Vec::new(),
    };
    let area = Area::new();
    let units = area.units();

    // Elders first: the care worker's account lists them.
    let elders = builder.elders(&area)?;
    for (index, village) in area.villages.iter().enumerate() {
        match (index, first_village_records) {
            (0, Some(records)) => builder.village_ledger(village, records)?,
            _ => builder.village_children(village, index == 0)?,
        }
    }
    builder.service_logs(&elders)?;
    let elder_ids: Vec<SubjectId> = elders.into_iter().map(|elder| elder.id).collect();

    let accounts = area
        .accounts(&elder_ids)
        .into_iter()
        .map(|account| DemoAccount {
            account,
            password: DEMO_PASSWORD,
        })
        .collect();
    Ok(DemoData {
        units,
        accounts,
        documents: builder.documents,
    })
}

// ---------------------------------------------------------------------------------------
// The area and its accounts.

const PREFECTURE: &str = "370400";
const DISTRICT: &str = "370402";
const TOWNSHIP_1: &str = "370402102";
const TOWNSHIP_2: &str = "370402104";

const WORKER: &str = "acct-demo-worker";
const REVIEWER: &str = "acct-demo-reviewer";
const ADMIN: &str = "acct-demo-admin";

/// One village and the people who work on its records.
#[derive(Clone, Debug)]
struct Village {
    code: OrgUnitCode,
    name: &'static str,
    township: &'static str,
    /// The village child director's account id.
    director: AccountId,
    director_username: String,
    /// Who reviews the village's records. The second township has no reviewer account in
    /// the demo, so the bureau administrator (who may do everything) reviews there.
    reviewer: AccountId,
}

#[derive(Debug)]
struct Area {
    villages: Vec<Village>,
}

impl Area {
    fn new() -> Self {
        const VILLAGES: [(&str, &str, &str); 7] = [
            (TOWNSHIP_1, "201", "东王庄村"),
            (TOWNSHIP_1, "202", "西集村"),
            (TOWNSHIP_1, "203", "前良村"),
            (TOWNSHIP_1, "204", "后楼村"),
            (TOWNSHIP_2, "201", "张庄村"),
            (TOWNSHIP_2, "202", "李楼村"),
            (TOWNSHIP_2, "203", "马庄村"),
        ];
        let villages = VILLAGES
            .iter()
            .enumerate()
            .map(|(index, (township, suffix, name))| {
                // The first two directors have the names the manual uses; the others are
                // numbered in village order.
                let username = match index {
                    0 => "demo-director".to_owned(),
                    n => format!("demo-director-{}", n + 1),
                };
                Village {
                    code: OrgUnitCode::new(format!("{township}{suffix}")),
                    name,
                    township,
                    director: AccountId::new(format!("acct-{username}")),
                    director_username: username,
                    reviewer: AccountId::new(if *township == TOWNSHIP_1 {
                        REVIEWER
                    } else {
                        ADMIN
                    }),
                }
            })
            .collect();
        Area { villages }
    }

    fn units(&self) -> Vec<OrgUnit> {
        let unit = |code: &str, name: &str, level, parent: Option<&str>| OrgUnit {
            code: OrgUnitCode::new(code),
            name: name.to_owned(),
            level,
            parent: parent.map(OrgUnitCode::new),
        };
        let mut units = vec![
            unit(PREFECTURE, "枣庄市", OrgLevel::Prefecture, None),
            unit(DISTRICT, "市中区", OrgLevel::District, Some(PREFECTURE)),
            unit(TOWNSHIP_1, "齐村镇", OrgLevel::Township, Some(DISTRICT)),
            unit(TOWNSHIP_2, "税郭镇", OrgLevel::Township, Some(DISTRICT)),
        ];
        units.extend(self.villages.iter().map(|village| {
            unit(
                village.code.as_str(),
                village.name,
                OrgLevel::Village,
                Some(village.township),
            )
        }));
        units
    }

    fn accounts(&self, elders: &[SubjectId]) -> Vec<Account> {
        let mut accounts: Vec<Account> = self
            .villages
            .iter()
            .map(|village| {
                Account::new(
                    village.director.as_str(),
                    village.director_username.as_str(),
                    Role::VillageChildDirector,
                )
                .with_org_units([village.code.clone()])
            })
            .collect();
        accounts.push(
            Account::new(WORKER, "demo-worker", Role::CareWorker)
                .with_org_units([OrgUnitCode::new(TOWNSHIP_1)])
                .with_assigned_elders(elders.iter().cloned()),
        );
        accounts.push(
            Account::new(REVIEWER, "demo-reviewer", Role::TownshipReviewer)
                .with_org_units([OrgUnitCode::new(TOWNSHIP_1)]),
        );
        accounts.push(
            Account::new(ADMIN, "demo-admin", Role::BureauAdmin)
                .with_org_units([OrgUnitCode::new(PREFECTURE)]),
        );
        accounts
    }

    fn township_1_villages(&self) -> impl Iterator<Item = &Village> {
        self.villages.iter().filter(|v| v.township == TOWNSHIP_1)
    }
}

// ---------------------------------------------------------------------------------------
// Word lists.

const SURNAMES: &[&str] = &[
    "王", "张", "李", "刘", "孙", "褚", "邵", "颜", "赵", "陈", "杨", "徐", "马", "高", "韩", "宋",
];
const BOY_NAMES: &[&str] = &[
    "浩然", "宇轩", "俊杰", "思远", "嘉豪", "明轩", "博文", "家乐", "天佑", "子墨", "皓轩", "一鸣",
    "志强", "文博", "梓豪", "晨阳",
];
const GIRL_NAMES: &[&str] = &[
    "子涵", "梓萱", "欣怡", "雨桐", "佳怡", "梦琪", "诗涵", "若曦", "可欣", "语嫣", "雅琪", "静怡",
    "思彤", "晓雪", "一诺", "欣然",
];
const MEN_NAMES: &[&str] = &[
    "建国", "志刚", "海涛", "卫东", "永强", "建华", "红军", "国栋", "德厚", "长顺", "福全", "继先",
    "广田", "庆余", "玉山", "守仁",
];
const WOMEN_NAMES: &[&str] = &[
    "丽娟", "秀梅", "春燕", "红霞", "玉芳", "丽萍", "海燕", "秀英", "桂兰", "凤英", "玉兰", "秀珍",
    "淑芬", "兰英", "翠云", "素珍",
];

/// What a director notes for each checklist area when it is not `ok`, with the need found,
/// the action taken and the agency a serious case goes to. Areas in `Checklist::KEYS` order.
struct AreaFindings {
    notes: &'static [&'static str],
    serious: &'static [&'static str],
    need: &'static str,
    action: &'static str,
    agency: &'static str,
}

const FINDINGS: [AreaFindings; 5] = [
    AreaFindings {
        notes: &[
            "祖母年迈，照料能力有限",
            "父母长期在外务工，电话联系少",
            "监护人常外出打零工，儿童放学后无人看管",
        ],
        serious: &[
            "监护人长期外出，儿童独自生活",
            "监护人酗酒，多次未尽照料责任",
        ],
        need: "落实有效监护",
        action: "与监护人谈话，明确监护责任",
        agency: "镇妇联",
    },
    AreaFindings {
        notes: &[
            "本学期经常缺课",
            "学习成绩下滑明显",
            "上学路途远，冬季接送困难",
        ],
        serious: &["已连续两周未到校", "初中辍学在家"],
        need: "课业辅导",
        action: "联系班主任了解在校情况",
        agency: "镇中心小学",
    },
    AreaFindings {
        notes: &[
            "患有哮喘，需定期用药",
            "营养不良，体重偏低",
            "视力下降，尚未配镜",
        ],
        serious: &["癫痫反复发作，未规律服药", "重度贫血，未及时就医"],
        need: "就医及康复支持",
        action: "协助申请医疗救助",
        agency: "镇卫生院",
    },
    AreaFindings {
        notes: &[
            "家中电线老化，存在隐患",
            "独自在家时间较长",
            "院内水井无井盖",
        ],
        serious: &["房屋墙体开裂，存在倒塌危险", "身上有多处不明伤痕"],
        need: "消除居家安全隐患",
        action: "协调村委会排查修缮",
        agency: "镇派出所",
    },
    AreaFindings {
        notes: &["冬季衣被不足", "住房潮湿漏雨", "家中无固定收入"],
        serious: &["家中断粮，靠邻居接济", "冬季无取暖设施"],
        need: "冬衣被褥及生活物资",
        action: "申请临时救助物资",
        agency: "镇民政办",
    },
];

const RED_REASONS: &[&str] = &[
    "父亲服刑，母亲离家失联，由年迈祖父照料",
    "父母双亡，祖母重病卧床，无人照料",
    "重度脑瘫，需长期康复训练，家庭无力承担",
];
const YELLOW_REASONS: &[&str] = &[
    "父母均在外务工，祖母年迈多病，无人辅导学习",
    "家庭低保户，住房破旧，冬季取暖困难",
    "近期多次逃学，监护人管教能力弱",
    "母亲患精神疾病，父亲收入不稳定",
];
const RETURN_COMMENTS: &[&str] = &[
    "请写明缺课天数及原因",
    "监护情况说明过于简单，请补充",
    "请补充下次走访计划",
    "走访时长偏短，请核实结束时间",
];
const DIRECTOR_REPLIES: &[&str] = &[
    "已补充，请再次审核",
    "已与班主任核实，缺课5天，已补充说明",
    "已补充监护人联系情况",
];
const REVIEWER_REMARKS: &[&str] = &[
    "请持续关注该儿童就学情况",
    "转介后请跟进落实情况",
    "情况记录清楚，继续保持",
];
const LOG_NOTES: &[&str] = &[
    "老人血压偏高，已提醒家属按时服药",
    "帮助打扫卫生并清洗衣物",
    "陪老人聊天，情绪稳定",
    "老人腿脚不便，协助洗澡",
    "老人反映夜间睡眠差，已告知家属",
];
const LOG_RETURN_COMMENTS: &[&str] = &["服务时长与签到记录不符，请核实", "请补充服务内容说明"];
const WORKER_REPLIES: &[&str] = &["已核实，签退时网络不好，时长无误", "已补充服务内容"];
const OTHER_SERVICES: &[&str] = &["理发", "助浴", "代购药品"];

// ---------------------------------------------------------------------------------------
// The builder.

/// One edit of a document: the record as it is after the edit, who made it and when.
struct Step {
    author: AccountId,
    at: Millis,
    record: Record,
}

struct Builder {
    rng: SmallRng,
    today: Date,
    today_days: i64,
    documents: Vec<DemoDocument>,
}

/// An elder as the service logs need it.
struct ElderProfile {
    id: SubjectId,
    village: OrgUnitCode,
    care_needs: CareNeedsLevel,
}

/// The plan of one child before the records are written.
struct ChildPlan {
    risk: RiskLevel,
    /// Days between visits for this risk level.
    interval: i64,
    /// The visit days, as days before today, most recent first.
    visit_days: Vec<i64>,
    /// When the child was registered, in days before today.
    registered: i64,
    /// When and why the child left the ledger, if they did.
    closed: Option<(i64, SubjectStatus, &'static str)>,
}

impl Builder {
    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items.choose(&mut self.rng).copied().unwrap_or_default()
    }

    fn new_id(&mut self) -> DocumentId {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes);
        DocumentId::random_from(bytes)
    }

    /// The China date `days_ago` days before today.
    fn date(&self, days_ago: i64) -> Result<Date, DemoError> {
        Date::from_days_since_epoch(self.today_days - days_ago)
            .ok_or(DemoError::DateOutOfRange(self.today))
    }

    /// The instant `days_ago` days before today at `minutes` past China midnight.
    fn instant(&self, days_ago: i64, minutes: i64) -> Millis {
        (self.today_days - days_ago) * DAY - CHINA_OFFSET_MILLIS + minutes * MINUTE
    }

    /// A random instant `days_ago` days before today, between the two hours (China time).
    fn instant_between(&mut self, days_ago: i64, from_hour: i64, to_hour: i64) -> Millis {
        let minutes = self.rng.random_range(from_hour * 60..to_hour * 60);
        self.instant(days_ago, minutes)
    }

    /// A random birth month of someone aged `ages` today.
    fn birth(&mut self, ages: std::ops::RangeInclusive<i64>) -> Result<YearMonth, DemoError> {
        let age = self.rng.random_range(ages);
        let month = self.rng.random_range(1..=12);
        u16::try_from(i64::from(self.today.year()) - age)
            .ok()
            .and_then(|year| YearMonth::new(year, month))
            .ok_or(DemoError::DateOutOfRange(self.today))
    }

    fn person_name(&mut self, surname: &str, gender: Gender, child: bool) -> String {
        let given = match (gender, child) {
            (Gender::Male, true) => self.pick(BOY_NAMES),
            (Gender::Female, true) => self.pick(GIRL_NAMES),
            (Gender::Male, false) => self.pick(MEN_NAMES),
            (Gender::Female, false) => self.pick(WOMEN_NAMES),
        };
        format!("{surname}{given}")
    }

    fn phone(&mut self) -> String {
        let prefix = self.pick(&["135", "137", "139", "150", "158", "187", "188"]);
        format!("{prefix}{:08}", self.rng.random_range(0..100_000_000u32))
    }

    fn gender(&mut self) -> Gender {
        if self.rng.random_bool(0.5) {
            Gender::Female
        } else {
            Gender::Male
        }
    }

    /// Writes `steps` into one automerge document and records it.
    fn store(&mut self, id: DocumentId, steps: Vec<Step>) -> Result<(), DemoError> {
        let mut doc = AutoCommit::new();
        let mut last = None;
        for step in steps {
            doc.set_actor(demo_actor(&step.author));
            step.record.save(&mut doc)?;
            // automerge keeps commit times in whole seconds.
            doc.commit_with(CommitOptions::default().with_time(step.at.div_euclid(1000)));
            last = Some(step.record);
        }
        let Some(record) = last else {
            return Ok(());
        };
        let document = id.to_string();
        validate(&record).map_err(|errors| DemoError::Invalid {
            document: document.clone(),
            detail: errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message_en()))
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let changes = doc
            .get_changes(&[])
            .iter()
            .map(|change| StoredChange {
                hash: change.hash(),
                bytes: change.raw_bytes().to_vec(),
            })
            .collect();
        self.documents.push(DemoDocument {
            id,
            meta: record.meta().with_document_id(&document),
            changes,
            heads: doc.get_heads(),
            report: report_row(&document, &record),
        });
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Children and home visits.

    fn village_children(&mut self, village: &Village, showcase: bool) -> Result<(), DemoError> {
        let count = self.rng.random_range(8..=15);
        let mut names = Vec::new();
        for index in 0..count {
            // The manual's village shows every state a director meets: its first child is
            // overdue for a red-risk visit, its second has a visit sent back for changes.
            let forced_overdue = showcase && index == 0;
            let forced_returned = showcase && index == 1;
            let plan = self.plan_child(forced_overdue, forced_returned);
            let id = self.new_id();
            let child = self.child(village, &plan, &mut names)?;
            let mut steps = vec![Step {
                author: village.director.clone(),
                at: self.instant_between(plan.registered, 8, 17),
                record: Record::Child(child.clone()),
            }];
            if let Some((closed_ago, status, reason)) = plan.closed {
                let at = self.instant_between(closed_ago, 8, 17);
                let mut closed = child;
                closed.status = status;
                closed
                    .comments
                    .push(Comment::new(village.director.clone(), at, reason));
                steps.push(Step {
                    author: village.director.clone(),
                    at,
                    record: Record::Child(closed),
                });
            }
            self.store(id, steps)?;
            let child_id = SubjectId::new(id.to_string());
            for (position, days_ago) in plan.visit_days.iter().enumerate() {
                let returned = forced_returned && position == 0;
                self.visit(
                    village,
                    &child_id,
                    &plan,
                    *days_ago,
                    position == 0,
                    returned,
                )?;
            }
        }
        Ok(())
    }

    /// Grows a village's ledger a demo village's worth of children at a time and cuts it
    /// at exactly `records` documents. A child's visits are stored newest first, so the cut
    /// can only drop the oldest visits of the last child, which leaves a ledger that could
    /// be real.
    fn village_ledger(&mut self, village: &Village, records: usize) -> Result<(), DemoError> {
        let start = self.documents.len();
        let mut showcase = true;
        while self.documents.len() - start < records {
            self.village_children(village, showcase)?;
            showcase = false;
        }
        self.documents.truncate(start + records);
        Ok(())
    }

    fn plan_child(&mut self, forced_overdue: bool, forced_returned: bool) -> ChildPlan {
        let risk = if forced_overdue {
            RiskLevel::Red
        } else {
            match self.rng.random_range(0..100) {
                0..10 => RiskLevel::Red,
                10..35 => RiskLevel::Yellow,
                35..65 => RiskLevel::Blue,
                _ => RiskLevel::Green,
            }
        };
        // Monthly for red, less often as the risk falls.
        let interval = match risk {
            RiskLevel::Red => 30,
            RiskLevel::Yellow => 60,
            RiskLevel::Blue => 90,
            RiskLevel::Green => 120,
        };
        let forced = forced_overdue || forced_returned;
        let registered = if !forced && self.rng.random_bool(0.1) {
            // Registered recently: few or no visits yet.
            self.rng.random_range(15..=60)
        } else {
            self.rng.random_range(200..=900)
        };
        // Only children registered before the visit window can have left the ledger in it.
        let closed = (!forced && registered >= 200 && self.rng.random_bool(0.08)).then(|| {
            let ago = self.rng.random_range(20..=120);
            match self.rng.random_range(0..3) {
                0 => (
                    ago,
                    SubjectStatus::Closed,
                    "家庭经济状况好转，退出困境儿童保障",
                ),
                1 => (
                    ago,
                    SubjectStatus::Moved,
                    "随父母迁往市区居住，已告知迁入地",
                ),
                _ => (ago, SubjectStatus::Closed, "父母返乡就业，不再属于留守儿童"),
            }
        });
        let last = if let Some((closed_ago, _, _)) = closed {
            closed_ago + self.rng.random_range(3..=20)
        } else if forced_returned {
            // Old enough to have been reviewed and answered.
            self.rng.random_range(12..=20)
        } else if forced_overdue || self.rng.random_bool(0.12) {
            interval + self.rng.random_range(5..=40)
        } else {
            self.rng.random_range(1..interval)
        };
        let mut visit_days = Vec::new();
        let mut day = last;
        while day <= VISIT_WINDOW_DAYS {
            if day < registered {
                visit_days.push(day);
            }
            day += interval + self.rng.random_range(-5..=5);
        }
        ChildPlan {
            risk,
            interval,
            visit_days,
            registered,
            closed,
        }
    }

    fn child(
        &mut self,
        village: &Village,
        plan: &ChildPlan,
        names: &mut Vec<String>,
    ) -> Result<Child, DemoError> {
        let surname = self.pick(SURNAMES);
        let gender = self.gender();
        // Two children of a village with the same name would confuse the demo's users.
        let mut name = self.person_name(surname, gender, true);
        for _ in 0..20 {
            if !names.contains(&name) {
                break;
            }
            name = self.person_name(surname, gender, true);
        }
        names.push(name.clone());
        let birth = self.birth(2..=16)?;
        let mut child = Child::new(village.code.clone(), name, birth, gender);

        let main = match self.rng.random_range(0..100) {
            0..10 => ChildCategory::Orphan,
            10..25 => ChildCategory::DeFactoUnattended,
            25..50 => ChildCategory::PoorFamily,
            50..60 => ChildCategory::SeverelyDisabled,
            _ => ChildCategory::LeftBehind,
        };
        child.categories.push(main);
        if main == ChildCategory::LeftBehind && self.rng.random_bool(0.3) {
            child.categories.push(ChildCategory::PoorFamily);
        }
        if main == ChildCategory::PoorFamily && self.rng.random_bool(0.2) {
            child.categories.push(ChildCategory::SeverelyDisabled);
        }

        let reason = match plan.risk {
            RiskLevel::Red => Some(self.pick(RED_REASONS).to_owned()),
            RiskLevel::Yellow => Some(self.pick(YELLOW_REASONS).to_owned()),
            RiskLevel::Blue => self
                .rng
                .random_bool(0.3)
                .then(|| "家庭情况基本稳定，需定期关注".to_owned()),
            RiskLevel::Green => None,
        };
        // The assessment is renewed at each visit; a child not visited yet was assessed
        // when registered.
        let assessed = plan.visit_days.first().copied().unwrap_or(plan.registered);
        child.risk = Some(Risk {
            level: plan.risk,
            date: self.date(assessed)?,
            reason,
        });

        child.guardians = self.guardians(surname, main);
        Ok(child)
    }

    fn guardians(&mut self, surname: &str, category: ChildCategory) -> Vec<Guardian> {
        let mut guardians = Vec::new();
        match category {
            ChildCategory::Orphan | ChildCategory::DeFactoUnattended => {
                let relation = match self.rng.random_range(0..10) {
                    0..6 => GuardianRelation::Grandparent,
                    6..8 => GuardianRelation::OtherRelative,
                    8 => GuardianRelation::Foster,
                    _ => GuardianRelation::Institution,
                };
                let name = if relation == GuardianRelation::Institution {
                    "枣庄市儿童福利院".to_owned()
                } else {
                    let gender = self.gender();
                    self.person_name(surname, gender, false)
                };
                let phone = self.rng.random_bool(0.8).then(|| self.phone());
                guardians.push(Guardian {
                    name,
                    relation,
                    phone,
                });
            }
            ChildCategory::LeftBehind => {
                let grandparent = self.person_name(surname, Gender::Female, false);
                let phone = self.rng.random_bool(0.5).then(|| self.phone());
                guardians.push(Guardian {
                    name: grandparent,
                    relation: GuardianRelation::Grandparent,
                    phone,
                });
                // The parent working away is the one to call.
                let father = self.person_name(surname, Gender::Male, false);
                let phone = Some(self.phone());
                guardians.push(Guardian {
                    name: father,
                    relation: GuardianRelation::Father,
                    phone,
                });
            }
            ChildCategory::PoorFamily | ChildCategory::SeverelyDisabled => {
                let mother_surname = self.pick(SURNAMES);
                let mother = self.person_name(mother_surname, Gender::Female, false);
                let phone = Some(self.phone());
                guardians.push(Guardian {
                    name: mother,
                    relation: GuardianRelation::Mother,
                    phone,
                });
                if self.rng.random_bool(0.7) {
                    let father = self.person_name(surname, Gender::Male, false);
                    let phone = self.rng.random_bool(0.6).then(|| self.phone());
                    guardians.push(Guardian {
                        name: father,
                        relation: GuardianRelation::Father,
                        phone,
                    });
                }
            }
        }
        guardians
    }

    fn checklist(&mut self, risk: RiskLevel) -> Checklist {
        let (concern, serious) = match risk {
            RiskLevel::Red => (0.35, 0.4),
            RiskLevel::Yellow => (0.2, 0.15),
            RiskLevel::Blue => (0.08, 0.0),
            RiskLevel::Green => (0.03, 0.0),
        };
        let [guardianship, schooling, health, safety, living] = FINDINGS.each_ref().map(|area| {
            let item = if !self.rng.random_bool(concern) {
                ChecklistItem::ok()
            } else if self.rng.random_bool(serious) {
                ChecklistItem::with_note(CheckStatus::Serious, self.pick(area.serious))
            } else {
                ChecklistItem::with_note(CheckStatus::Concern, self.pick(area.notes))
            };
            Some(item)
        });
        Checklist {
            guardianship,
            schooling,
            health,
            safety,
            living,
        }
    }

    fn visit(
        &mut self,
        village: &Village,
        child_id: &SubjectId,
        plan: &ChildPlan,
        days_ago: i64,
        latest: bool,
        forced_returned: bool,
    ) -> Result<(), DemoError> {
        let id = self.new_id();
        let director = village.director.clone();
        let started = self.instant_between(days_ago, 8, 17);
        let ended = started + self.rng.random_range(20..=90) * MINUTE;
        let mut visit = HomeVisit::new(
            village.code.clone(),
            director.clone(),
            child_id.clone(),
            started,
        );
        // A visit begins as a draft on the phone; it is completed when the director leaves.
        let mut steps = vec![Step {
            author: director.clone(),
            at: started,
            record: Record::HomeVisit(visit.clone()),
        }];
        if latest && days_ago <= 3 && !forced_returned && self.rng.random_bool(0.3) {
            // Not finished yet: the director saved what was looked at so far.
            visit.checklist.guardianship = Some(ChecklistItem::ok());
            visit.checklist.schooling = Some(ChecklistItem::ok());
            steps.push(Step {
                author: director,
                at: started + 15 * MINUTE,
                record: Record::HomeVisit(visit),
            });
            return self.store(id, steps);
        }

        visit.ended_at = Some(ended);
        visit.checklist = self.checklist(plan.risk);
        for ((_, item), findings) in visit.checklist.items().into_iter().zip(&FINDINGS) {
            let Some(item) = item else { continue };
            if item.status == CheckStatus::Ok {
                continue;
            }
            visit.needs.push(findings.need.to_owned());
            visit.actions.push(findings.action.to_owned());
            if item.status == CheckStatus::Serious {
                visit.referrals.push(Referral {
                    to: findings.agency.to_owned(),
                    reason: item.note.clone(),
                });
            }
        }
        if plan.risk == RiskLevel::Red && visit.actions.is_empty() {
            visit.actions.push("向监护人宣传儿童保护政策".to_owned());
        }
        visit.next_visit_date = Some(self.date(days_ago - plan.interval)?);
        visit.status = RecordStatus::Final;
        steps.push(Step {
            author: director.clone(),
            at: ended,
            record: Record::HomeVisit(visit.clone()),
        });

        let review_ago = days_ago - self.rng.random_range(1..=REVIEW_DELAY_DAYS_MAX);
        let roll = self.rng.random_range(0..100);
        if review_ago >= 1 && (forced_returned || roll < 90) {
            let at = self.instant_between(review_ago, 9, 17);
            if forced_returned || roll < 12 {
                visit.review = Review::send_back(
                    village.reviewer.clone(),
                    at,
                    self.pick(RETURN_COMMENTS).to_owned(),
                );
                steps.push(Step {
                    author: village.reviewer.clone(),
                    at,
                    record: Record::HomeVisit(visit.clone()),
                });
                let reply_ago = review_ago - self.rng.random_range(0..=2);
                if reply_ago >= 1 && (forced_returned || self.rng.random_bool(0.6)) {
                    // The director answers the same day at the earliest, after the review.
                    let reply_at = at.max(self.instant(reply_ago, 8 * 60)) + HOUR;
                    let text = self.pick(DIRECTOR_REPLIES);
                    visit
                        .comments
                        .push(Comment::new(director.clone(), reply_at, text));
                    steps.push(Step {
                        author: director,
                        at: reply_at,
                        record: Record::HomeVisit(visit),
                    });
                }
            } else {
                visit.review = Review::approve(village.reviewer.clone(), at, None);
                if self.rng.random_bool(0.15) {
                    let text = self.pick(REVIEWER_REMARKS);
                    visit
                        .comments
                        .push(Comment::new(village.reviewer.clone(), at, text));
                }
                steps.push(Step {
                    author: village.reviewer.clone(),
                    at,
                    record: Record::HomeVisit(visit),
                });
            }
        }
        self.store(id, steps)
    }

    // -----------------------------------------------------------------------------------
    // Elders and service logs.

    /// About ten elders in the villages of the first township, registered by the bureau
    /// (care workers may not create elder records), in creation order.
    fn elders(&mut self, area: &Area) -> Result<Vec<ElderProfile>, DemoError> {
        let villages: Vec<Village> = area.township_1_villages().cloned().collect();
        let mut elders = Vec::new();
        for village in villages.iter().cycle().take(10) {
            let surname = self.pick(SURNAMES);
            let gender = self.gender();
            let name = self.person_name(surname, gender, false);
            let birth = self.birth(68..=92)?;
            let care_needs = match self.rng.random_range(0..10) {
                0 => CareNeedsLevel::Independent,
                1..3 => CareNeedsLevel::Mild,
                3..6 => CareNeedsLevel::Moderate,
                6..8 => CareNeedsLevel::Severe,
                _ => CareNeedsLevel::Total,
            };
            let elder = Elder::new(village.code.clone(), name, birth, gender, care_needs);
            let id = self.new_id();
            let registered = self.rng.random_range(150..=700);
            let at = self.instant_between(registered, 9, 17);
            self.store(
                id,
                vec![Step {
                    author: AccountId::new(ADMIN),
                    at,
                    record: Record::Elder(elder),
                }],
            )?;
            elders.push(ElderProfile {
                id: SubjectId::new(id.to_string()),
                village: village.code.clone(),
                care_needs,
            });
        }
        Ok(elders)
    }

    fn service_logs(&mut self, elders: &[ElderProfile]) -> Result<(), DemoError> {
        // The days each elder is served, then the worker's rounds day by day, so that no
        // two services of the one worker overlap.
        let mut rounds: BTreeMap<i64, Vec<&ElderProfile>> = BTreeMap::new();
        for elder in elders {
            let every = match elder.care_needs {
                CareNeedsLevel::Total => 3,
                CareNeedsLevel::Severe => 4,
                CareNeedsLevel::Moderate => 7,
                CareNeedsLevel::Mild => 14,
                CareNeedsLevel::Independent => 30,
            };
            let mut day = self.rng.random_range(1..=every);
            while day <= LOG_WINDOW_DAYS {
                rounds.entry(day).or_default().push(elder);
                day += every + self.rng.random_range(-1..=1);
            }
        }
        // Oldest day first, so that the logs are made in the order of their days.
        for (days_ago, served) in rounds.into_iter().rev() {
            let mut minute = 8 * 60 + self.rng.random_range(0..60);
            for elder in served {
                let duration = self.rng.random_range(30..=120);
                self.service_log(days_ago, minute, duration, elder)?;
                minute += duration + self.rng.random_range(15..=40);
            }
        }
        Ok(())
    }

    fn service_log(
        &mut self,
        days_ago: i64,
        minute: i64,
        duration: i64,
        elder: &ElderProfile,
    ) -> Result<(), DemoError> {
        let id = self.new_id();
        let worker = AccountId::new(WORKER);
        let check_in = self.instant(days_ago, minute);
        let mut log = ServiceLog::new(
            elder.village.clone(),
            worker.clone(),
            elder.id.clone(),
            check_in,
        );
        let mut steps = vec![Step {
            author: worker.clone(),
            at: check_in,
            record: Record::ServiceLog(log.clone()),
        }];

        let mut services = vec![if matches!(
            elder.care_needs,
            CareNeedsLevel::Independent | CareNeedsLevel::Mild
        ) {
            ServiceType::Visiting
        } else {
            ServiceType::DailyCare
        }];
        for service in [
            ServiceType::EmotionalComfort,
            ServiceType::Laundry,
            ServiceType::Counselling,
        ] {
            if self.rng.random_bool(0.3) {
                services.push(service);
            }
        }
        if self.rng.random_bool(0.05) {
            services.push(ServiceType::Other(self.pick(OTHER_SERVICES).to_owned()));
        }
        log.services = services;

        let served_until = check_in + duration * MINUTE;
        if days_ago >= 2 && self.rng.random_bool(0.03) {
            // The worker forgot to check out and did it the next morning; the duration
            // was entered by hand.
            log.check_out = Some(check_in + self.rng.random_range(13..=15) * HOUR);
            log.duration_override = Some(DurationOverride {
                minutes: duration,
                reason: Some("忘记签退，按实际服务时长填写".to_owned()),
            });
        } else {
            log.check_out = Some(served_until);
        }
        let confirmation = self.rng.random_range(0..100);
        if confirmation < 80 {
            let method = match self.rng.random_range(0..100) {
                0..40 => ConfirmationMethod::Signature,
                40..65 => ConfirmationMethod::Thumbprint,
                65..85 => ConfirmationMethod::FamilyMember,
                _ => ConfirmationMethod::Verbal,
            };
            log.confirmation = Some(Confirmation {
                confirmed: true,
                at: served_until,
                method,
            });
        } else if confirmation < 85 {
            log.confirmation = Some(Confirmation {
                confirmed: false,
                at: served_until,
                method: ConfirmationMethod::Verbal,
            });
            log.note = Some("老人认为服务时间不足，未确认".to_owned());
        }
        if log.note.is_none() && self.rng.random_bool(0.4) {
            log.note = Some(self.pick(LOG_NOTES).to_owned());
        }
        let checked_out = log.check_out.unwrap_or(served_until);
        steps.push(Step {
            author: worker.clone(),
            at: checked_out,
            record: Record::ServiceLog(log.clone()),
        });

        let review_ago = days_ago - self.rng.random_range(1..=REVIEW_DELAY_DAYS_MAX);
        let roll = self.rng.random_range(0..100);
        let reviewer = AccountId::new(REVIEWER);
        if review_ago >= 1 && roll < 80 {
            let at = self
                .instant_between(review_ago, 9, 17)
                .max(checked_out + HOUR);
            if roll < 5 {
                log.review = Review::send_back(
                    reviewer.clone(),
                    at,
                    self.pick(LOG_RETURN_COMMENTS).to_owned(),
                );
                steps.push(Step {
                    author: reviewer,
                    at,
                    record: Record::ServiceLog(log.clone()),
                });
                if review_ago >= 2 && self.rng.random_bool(0.5) {
                    let reply_at = at + self.rng.random_range(1..=6) * HOUR;
                    let text = self.pick(WORKER_REPLIES);
                    log.comments
                        .push(Comment::new(worker.clone(), reply_at, text));
                    steps.push(Step {
                        author: worker,
                        at: reply_at,
                        record: Record::ServiceLog(log),
                    });
                }
            } else {
                log.review = Review::approve(reviewer.clone(), at, None);
                steps.push(Step {
                    author: reviewer,
                    at,
                    record: Record::ServiceLog(log),
                });
            }
        }
        self.store(id, steps)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use automerge::{Automerge, Change};
    use caresync_core::access::{Decision, decide_change};
    use caresync_core::domain::{DocumentKind, OrgTree, ReviewState};

    use super::*;

    fn today() -> Date {
        Date::new(2025, 6, 15).unwrap()
    }

    fn today_start() -> Millis {
        today().days_since_epoch() * DAY - CHINA_OFFSET_MILLIS
    }

    fn changes(document: &DemoDocument) -> Vec<Change> {
        document
            .changes
            .iter()
            .map(|stored| {
                let change = Change::from_bytes(stored.bytes.clone()).unwrap();
                assert_eq!(change.hash(), stored.hash);
                change
            })
            .collect()
    }

    fn load(document: &DemoDocument) -> (Automerge, Record) {
        let mut doc = Automerge::new();
        doc.apply_changes(changes(document)).unwrap();
        let record = Record::load(&doc).unwrap();
        (doc, record)
    }

    fn records(data: &DemoData) -> Vec<(&DemoDocument, Record)> {
        data.documents
            .iter()
            .map(|document| (document, load(document).1))
            .collect()
    }

    #[test]
    fn the_demo_is_deterministic() {
        assert_eq!(demo_data(today()).unwrap(), demo_data(today()).unwrap());
        // A different day moves the times but keeps the demo's shape.
        let later = demo_data(Date::new(2025, 9, 1).unwrap()).unwrap();
        assert_eq!(later.accounts, demo_data(today()).unwrap().accounts);
    }

    #[test]
    fn a_grown_village_holds_exactly_the_records_asked_for_and_ids_stay_unique() {
        let ordinary = demo_data(today()).unwrap();
        let grown = demo_data_with_village_records(today(), 500).unwrap();
        let first = &grown
            .units
            .iter()
            .find(|u| u.level == OrgLevel::Village)
            .unwrap()
            .code;
        let in_first = |data: &DemoData| {
            data.documents
                .iter()
                .filter(|d| &d.meta.owner == first)
                .filter(|d| matches!(d.meta.kind, DocumentKind::Child | DocumentKind::HomeVisit))
                .count()
        };
        assert_eq!(in_first(&grown), 500);
        assert!(in_first(&ordinary) < 500);
        let ids: HashSet<_> = grown.documents.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), grown.documents.len());
        assert_eq!(grown.accounts, ordinary.accounts);
    }

    #[test]
    fn every_document_loads_back_from_its_changes_and_is_valid() {
        let data = demo_data(today()).unwrap();
        let count = data.documents.len();
        assert!((300..=1500).contains(&count), "{count} documents");
        let mut ids = HashSet::new();
        for document in &data.documents {
            assert!(ids.insert(document.id), "duplicate id {}", document.id);
            let (doc, record) = load(document);
            validate(&record).unwrap();
            let id = document.id.to_string();
            assert_eq!(document.meta, record.meta().with_document_id(&id));
            assert_eq!(document.report, report_row(&id, &record));
            let mut heads = doc.get_heads();
            let mut expected = document.heads.clone();
            heads.sort();
            expected.sort();
            assert_eq!(heads, expected);
            assert!(doc.get_changes(&[]).len() == document.changes.len());
        }
        for kind in DocumentKind::ALL {
            assert!(
                data.documents.iter().any(|d| d.meta.kind == kind),
                "no {kind} documents"
            );
        }
    }

    #[test]
    fn every_change_is_one_its_author_may_make() {
        let data = demo_data(today()).unwrap();
        let tree = OrgTree::from_units(data.units.clone());
        let by_actor: HashMap<ActorId, &Account> = data
            .accounts
            .iter()
            .map(|demo| (demo_actor(&demo.account.id), &demo.account))
            .collect();
        for document in &data.documents {
            let mut doc = Automerge::new();
            let mut before: Option<Record> = None;
            for change in changes(document) {
                let author = by_actor[change.actor_id()];
                doc.apply_changes([change]).unwrap();
                let after = Record::load(&doc).unwrap();
                let decision =
                    decide_change(author, &tree, &document.meta, before.as_ref(), &after);
                assert_eq!(
                    decision,
                    Decision::Allow,
                    "{} by {}",
                    document.id,
                    author.username
                );
                before = Some(after);
            }
        }
    }

    #[test]
    fn every_time_lies_before_today() {
        let data = demo_data(today()).unwrap();
        let start = today_start();
        for (document, record) in records(&data) {
            let mut times: Vec<Millis> = record.comments().iter().map(|c| c.at).collect();
            times.extend(record.review().and_then(|r| r.at));
            match &record {
                Record::HomeVisit(visit) => {
                    times.push(visit.started_at);
                    times.extend(visit.ended_at);
                }
                Record::ServiceLog(log) => {
                    times.push(log.check_in);
                    times.extend(log.check_out);
                    times.extend(log.confirmation.as_ref().map(|c| c.at));
                }
                Record::Child(_) | Record::Elder(_) => {}
            }
            for change in changes(document) {
                assert!(change.timestamp() * 1000 < start);
            }
            for at in times {
                assert!(at < start, "{} has a time after today", document.id);
            }
        }
    }

    #[test]
    fn every_visit_is_of_a_child_of_its_village_and_every_log_of_an_assigned_elder() {
        let data = demo_data(today()).unwrap();
        let subjects: HashMap<&str, (&DocumentKind, &OrgUnitCode)> = data
            .documents
            .iter()
            .filter(|d| d.meta.kind.is_subject())
            .map(|d| (d.report.document.as_str(), (&d.meta.kind, &d.meta.owner)))
            .collect();
        let worker = data
            .accounts
            .iter()
            .find(|a| a.account.username == "demo-worker")
            .unwrap();
        for document in &data.documents {
            let report = &document.report;
            let Some(subject) = &report.subject else {
                continue;
            };
            let (kind, village) = subjects[subject.as_str()];
            assert_eq!(village, &report.org_unit);
            match report.kind {
                DocumentKind::HomeVisit => assert_eq!(*kind, DocumentKind::Child),
                DocumentKind::ServiceLog => {
                    assert_eq!(*kind, DocumentKind::Elder);
                    assert!(worker.account.is_assigned(subject));
                    assert!(village.as_str().starts_with(TOWNSHIP_1));
                }
                other => panic!("{other} links to a subject"),
            }
        }
    }

    #[test]
    fn the_demo_directors_village_has_overdue_and_returned_records() {
        let data = demo_data(today()).unwrap();
        let director = data
            .accounts
            .iter()
            .find(|a| a.account.username == "demo-director")
            .unwrap();
        let village = &director.account.org_units[0];
        let rows: Vec<&ReportRow> = data
            .documents
            .iter()
            .map(|d| &d.report)
            .filter(|r| &r.org_unit == village)
            .collect();
        let returned = rows
            .iter()
            .filter(|r| r.review_state == Some(ReviewState::Returned))
            .count();
        assert!(returned >= 1);
        let overdue = rows
            .iter()
            .filter(|r| r.kind == DocumentKind::Child && r.active)
            .filter(|child| {
                let latest = rows
                    .iter()
                    .filter(|v| v.subject.as_ref().map(|s| s.as_str()) == Some(&child.document))
                    .filter(|v| v.record_status == Some(RecordStatus::Final))
                    .max_by_key(|v| v.started_at);
                latest.is_none_or(|v| v.next_visit.is_some_and(|next| next < today()))
            })
            .count();
        assert!(overdue >= 1);
        // And the other states a director meets.
        assert!(
            rows.iter()
                .any(|r| r.review_state == Some(ReviewState::Approved))
        );
        assert!(
            rows.iter()
                .any(|r| r.kind == DocumentKind::Child && r.risk == Some(RiskLevel::Red))
        );
    }

    #[test]
    fn the_accounts_are_the_documented_ones() {
        let data = demo_data(today()).unwrap();
        let usernames: Vec<&str> = data
            .accounts
            .iter()
            .map(|a| a.account.username.as_str())
            .collect();
        let mut expected = vec![
            "demo-director",
            "demo-director-2",
            "demo-worker",
            "demo-reviewer",
            "demo-admin",
        ];
        expected.extend(["demo-director-3", "demo-director-4", "demo-director-5"]);
        expected.extend(["demo-director-6", "demo-director-7"]);
        let mut sorted = usernames.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        for demo in &data.accounts {
            assert_eq!(demo.password, "demo-password");
            assert_eq!(
                demo.account.id.as_str(),
                format!("acct-{}", demo.account.username)
            );
        }
        let role = |name: &str| {
            let found = data
                .accounts
                .iter()
                .find(|a| a.account.username == name)
                .unwrap();
            (found.account.role, found.account.org_units.clone())
        };
        let units: HashMap<&str, &OrgUnit> =
            data.units.iter().map(|u| (u.name.as_str(), u)).collect();
        let code = |name: &str| units[name].code.clone();
        assert_eq!(
            role("demo-director"),
            (Role::VillageChildDirector, vec![code("东王庄村")])
        );
        assert_eq!(
            role("demo-director-2"),
            (Role::VillageChildDirector, vec![code("西集村")])
        );
        assert_eq!(
            role("demo-worker"),
            (Role::CareWorker, vec![code("齐村镇")])
        );
        assert_eq!(
            role("demo-reviewer"),
            (Role::TownshipReviewer, vec![code("齐村镇")])
        );
        assert_eq!(
            role("demo-admin"),
            (Role::BureauAdmin, vec![code("枣庄市")])
        );
        assert_eq!(units["东王庄村"].parent, Some(code("齐村镇")));
        assert_eq!(units["西集村"].parent, Some(code("齐村镇")));
        // Codes are hierarchical: each starts with its parent's significant digits (the
        // prefecture 370400 is 3704 followed by zeros for the levels below it).
        for unit in &data.units {
            if let Some(parent) = &unit.parent {
                let prefix = parent.as_str().trim_end_matches("00");
                assert!(unit.code.as_str().starts_with(prefix), "{}", unit.code);
            }
        }
    }
}
