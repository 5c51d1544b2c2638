//! The Jiangsu February 2020 programme as data (product issue 10), built
//! into an empty database by [`build`]: the province → city → county tree,
//! the provincial emergency-support team (46 volunteers, nine key
//! hospitals in Nanjing as employers), the city committees' teams, the
//! Yangzhou partner fleet, requesters with households, and pairings.
//!
//! Everything about people is synthetic and says so: names start with
//! `示例` ("example"), streets end in `(示例地址)`, phone numbers come from
//! the 1380000xxxx / 1390000xxxx blocks. Hospitals sit on their district's
//! representative point from `data/cn-adcodes.csv` (no invented precise
//! coordinates); people live within a few km of a district's point (a
//! seeded jitter, synthetic like their names).

use chrono::{NaiveTime, Weekday};
use homefront_domain::availability::WeeklyWindow;
use homefront_domain::credentials::{Credential, CredentialKind};
use homefront_domain::org::OrgKind;
use homefront_domain::vetting::VettingState;
use homefront_domain::{GeoPoint, PhoneNumber, Role, Timestamp};
use homefront_store::credentials::NewCredential;
use homefront_store::dispatch::{DEFAULT_REOFFER_COOLDOWN_MINUTES, NewDispatchSetting};
use homefront_store::households::MemberFields;
use homefront_store::org_units::{NewOrgUnit, OrgUnit};
use homefront_store::volunteers::{Account, VolunteerProfile};
use homefront_store::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The password of every demo account (printed by `serve --demo`; it is a
/// demo, not a deployment).
pub const DEMO_PASSWORD: &str = "homefront-demo";

/// The nine key hospitals of the seed with the Nanjing district of their
/// main campus (6-digit adcode).
pub const HOSPITALS: [(&str, &str); 9] = [
    ("江苏省人民医院", "320106"),
    ("江苏省中医院", "320104"),
    ("东南大学附属中大医院", "320106"),
    ("江苏省第二中医院", "320105"),
    ("江苏省肿瘤医院", "320102"),
    ("江苏省省级机关医院", "320106"),
    ("南京鼓楼医院", "320106"),
    ("南京市第一医院", "320104"),
    ("南京市儿童医院", "320106"),
];

/// Nanjing's urban districts where provincial volunteers and hospital
/// staff live.
const NANJING_URBAN: [&str; 8] = [
    "320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115",
];

/// Which part of the programme a team, volunteer or household belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Programme {
    /// The provincial emergency-support team (团省委省应急保障志愿服务队).
    Provincial,
    /// Nanjing committee: carriers' free call time and data, courier errands.
    Nanjing,
    /// Southeast University volunteers: meals at Zhongda Hospital.
    Seu,
    /// Yangzhou: the partner company's fleet of 20 cars.
    Yangzhou,
    /// Xuzhou: city and county teams, a six-item menu, one-to-one.
    Xuzhou,
    /// Yancheng: online tutoring and companionship, 99 children paired.
    Yancheng,
    /// Nantong: one frontline family, two volunteers.
    Nantong,
    /// A city's 12355 counselling team.
    Counselling,
}

/// A demo volunteer.
#[derive(Clone, Debug)]
pub struct DemoVolunteer {
    /// Account id.
    pub user_id: i64,
    /// Phone (E.164).
    pub phone: String,
    /// Team org unit id.
    pub team_id: i64,
    /// Programme.
    pub programme: Programme,
    /// Daily duty hours, local minutes after midnight `[start, end)`.
    pub duty: (u32, u32),
}

/// A demo household.
#[derive(Clone, Debug)]
pub struct DemoHousehold {
    /// The requester's account id.
    pub requester_id: i64,
    /// Phone (E.164).
    pub phone: String,
    /// Household id.
    pub household_id: i64,
    /// Programme whose orders it places.
    pub programme: Programme,
    /// 4-digit city code (e.g. `3201`).
    pub city: String,
    /// Members: (id, relation).
    pub members: Vec<(i64, String)>,
    /// Employer hospital's name, for the provincial programme.
    pub employer: Option<String>,
}

/// One demo sign-in per role.
#[derive(Clone, Debug)]
pub struct DemoLogin {
    /// Role as shown, e.g. `coordinator (province)`.
    pub role: String,
    /// Phone to sign in with.
    pub phone: String,
    /// What to look at.
    pub note: String,
}

/// What [`build`] created.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// The province's org unit id.
    pub province_id: i64,
    /// The provincial team's org unit id.
    pub provincial_team_id: i64,
    /// Every volunteer, by account id.
    pub volunteers: Vec<DemoVolunteer>,
    /// Every household, by requester id.
    pub households: Vec<DemoHousehold>,
    /// Demo sign-ins.
    pub logins: Vec<DemoLogin>,
    /// The volunteer a person signs in as (13900000001): the live driver
    /// never acts as this account.
    pub login_volunteer_id: i64,
    /// The requester a person signs in as (13800010001): the live driver
    /// never acts as this account.
    pub login_requester_id: i64,
}

/// Why the scenario was not built.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something the shipped data should contain is missing.
    #[error("demo data: {0}")]
    Data(String),
}

struct Builder<'a> {
    store: &'a Store,
    hash: &'a str,
    at: Timestamp,
    rng: StdRng,
    next_volunteer_phone: u32,
    next_requester_phone: u32,
    out: Scenario,
}

fn data(msg: impl Into<String>) -> ScenarioError {
    ScenarioError::Data(msg.into())
}

/// Six-hour duty shifts, local minutes from midnight: one starts at 07:00,
/// so someone is on duty from the first orders of the day (arrivals run
/// 07:00–21:00) to 22:00.
const SHIFTS: [(u32, u32); 4] = [
    (7 * 60, 13 * 60),
    (11 * 60, 17 * 60),
    (14 * 60, 20 * 60),
    (16 * 60, 22 * 60),
];

/// The shift of the `n`-th volunteer of the scenario: a hash of `n`
/// (splitmix64's finaliser), so that shifts do not follow a volunteer's
/// qualification, county or team, which are assigned by `i % k` patterns.
fn shift_of(n: u32) -> (u32, u32) {
    let mut z = u64::from(n).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    SHIFTS[(z % SHIFTS.len() as u64) as usize]
}

impl Builder<'_> {
    async fn division(&self, adcode6: &str) -> Result<OrgUnit, ScenarioError> {
        self.store
            .org_unit_by_adcode(&format!("{adcode6}000000"))
            .await?
            .ok_or_else(|| data(format!("division {adcode6} is not in the org tree")))
    }

    /// The county-level divisions of a city (4-digit code), by adcode.
    async fn counties(&self, city: &str) -> Result<Vec<OrgUnit>, ScenarioError> {
        let parent = self.division(&format!("{city}00")).await?;
        let mut units = self
            .store
            .org_units(None, Some(parent.id), Some(OrgKind::County))
            .await?;
        units.sort_by(|a, b| a.adcode.cmp(&b.adcode));
        if units.is_empty() {
            return Err(data(format!("city {city} has no counties")));
        }
        Ok(units)
    }

    async fn unit(
        &self,
        kind: OrgKind,
        name: &str,
        parent: &OrgUnit,
    ) -> Result<OrgUnit, ScenarioError> {
        let location = parent.longitude.zip(parent.latitude);
        Ok(self
            .store
            .create_org_unit(
                NewOrgUnit {
                    kind,
                    name,
                    parent,
                    location,
                },
                self.at.epoch_ms(),
            )
            .await?)
    }

    /// A synthetic point within about `km` of the division's point.
    fn near(&mut self, d: &OrgUnit, km: f64) -> Option<GeoPoint> {
        let (lon, lat) = d.longitude.zip(d.latitude)?;
        // 1 km is about 0.009° of latitude and 0.0106° of longitude at 32° N.
        let dx = self.rng.random_range(-km..km) * 0.0106;
        let dy = self.rng.random_range(-km..km) * 0.009;
        GeoPoint::new(lon + dx, lat + dy).ok()
    }

    /// The next volunteer's shift (see [`shift_of`]).
    fn shift(&self) -> (u32, u32) {
        shift_of(self.next_volunteer_phone)
    }

    fn volunteer_phone(&mut self) -> PhoneNumber {
        self.next_volunteer_phone += 1;
        PhoneNumber::parse(&format!("1390000{:04}", self.next_volunteer_phone))
            .expect("1390000xxxx is a valid mobile number")
    }

    fn requester_phone(&mut self) -> PhoneNumber {
        self.next_requester_phone += 1;
        PhoneNumber::parse(&format!("1380001{:04}", self.next_requester_phone))
            .expect("1380001xxxx is a valid mobile number")
    }

    /// An active, credentialed volunteer who went through the whole vetting
    /// pipeline of the seed (review, interview, training, exam, agreement,
    /// insurance), one step a day before the programme started.
    #[allow(clippy::too_many_arguments)]
    async fn volunteer(
        &mut self,
        programme: Programme,
        team: &OrgUnit,
        home: &OrgUnit,
        radius_km: f64,
        quals: &[CredentialKind],
        duty: (u32, u32),
        max_concurrent: u32,
    ) -> Result<DemoVolunteer, ScenarioError> {
        let phone = self.volunteer_phone();
        let n = self.next_volunteer_phone;
        let name = format!("示例志愿者{n:03}");
        let location = self.near(home, 3.0);
        let start = self.at.plus_days(-9);
        let id = self
            .store
            .register_volunteer(
                Account::New {
                    phone: &phone,
                    display_name: &name,
                    password_hash: self.hash,
                },
                &VolunteerProfile {
                    team_id: team.id,
                    home_division_id: home.id,
                    home_location: location,
                    service_radius_km: radius_km,
                    declared_qualifications: vec![],
                    vehicle_seats: quals.contains(&CredentialKind::DrivingLicence).then_some(4),
                    languages: vec![],
                    max_concurrent,
                    gender: None,
                    emergency_contact: None,
                },
                None,
                start,
            )
            .await?
            .map_err(|e| data(format!("registering {phone}: {e:?}")))?;
        for (day, target) in [
            VettingState::Reviewed,
            VettingState::Interviewed,
            VettingState::Trained,
            VettingState::ExamPassed,
            VettingState::AgreementSigned,
            VettingState::Insured,
            VettingState::Active,
        ]
        .into_iter()
        .enumerate()
        {
            let mut tx = self.store.begin_write().await?;
            Store::move_vetting_tx(
                &mut tx,
                id,
                target,
                None,
                start.plus_days(1 + i64::try_from(day).unwrap_or(0)),
                Some("示例:上岗流程"),
                None,
            )
            .await?
            .map_err(|e| data(format!("vetting {phone}: {e}")))?;
            tx.commit().await?;
        }
        let mut kinds = vec![
            CredentialKind::TrainingCertificate,
            CredentialKind::ServiceAgreement,
            CredentialKind::Insurance,
        ];
        kinds.extend_from_slice(quals);
        for kind in kinds {
            let c = Credential::new(kind, start, Some(start.plus_days(365)))
                .map_err(|e| data(e.to_string()))?;
            let insured = kind == CredentialKind::Insurance;
            self.store
                .add_credential(
                    &NewCredential {
                        volunteer_id: id,
                        credential: &c,
                        insurer: insured.then_some("示例保险公司"),
                        policy_number: insured.then_some("DEMO-POLICY"),
                        document_ref: None,
                        actor: None,
                    },
                    start,
                )
                .await?;
        }
        let v = DemoVolunteer {
            user_id: id,
            phone: phone.as_str().to_string(),
            team_id: team.id,
            programme,
            duty,
        };
        self.out.volunteers.push(v.clone());
        Ok(v)
    }

    /// A requester with a household of `relations` at `home`.
    async fn household(
        &mut self,
        programme: Programme,
        home: &OrgUnit,
        relations: &[&str],
        employer: Option<(&OrgUnit, bool)>,
    ) -> Result<DemoHousehold, ScenarioError> {
        let phone = self.requester_phone();
        let n = self.next_requester_phone;
        let now = self.at.epoch_ms();
        let user = self
            .store
            .create_user(
                &phone,
                &format!("示例医护{n:03}"),
                self.hash,
                homefront_domain::locale::Locale::ZhCn,
                now,
            )
            .await?;
        self.store
            .grant_role(user.id, Role::Requester, None, now)
            .await?;
        let household = self.store.household_of(user.id, now).await?;
        if let Some((hospital, deployed)) = employer {
            self.store
                .verify_household(
                    household.id,
                    hospital.id,
                    Some("示例科室"),
                    deployed,
                    user.id,
                    now,
                )
                .await?;
        }
        let point = self.near(home, 2.0);
        let mut members = Vec::new();
        for (i, relation) in relations.iter().enumerate() {
            let (age, grade) = match *relation {
                "child" => (Some(9 + (n % 6) as i64), Some(format!("{}年级", 3 + n % 6))),
                "parent" => (Some(68 + (n % 12) as i64), None),
                _ => (Some(35), None),
            };
            let m = self
                .store
                .add_member(
                    household.id,
                    &MemberFields {
                        name: format!("示例成员{n:03}-{}", i + 1),
                        relation: relation.parse().expect("a relation of the scenario"),
                        age_years: age,
                        school_grade: grade,
                        phone: None,
                        division_id: home.id,
                        street: format!("{}示例路{}号(示例地址)", home.name, n),
                        location: point.map(|p| (p.longitude, p.latitude)),
                        // A guardian (the requester) consented for the demo.
                        guardian_consent: *relation == "child",
                    },
                    now,
                )
                .await?;
            members.push((m.id, relation.to_string()));
        }
        let city = home
            .adcode
            .as_deref()
            .map(|a| a[..4].to_string())
            .unwrap_or_default();
        let h = DemoHousehold {
            requester_id: user.id,
            phone: phone.as_str().to_string(),
            household_id: household.id,
            programme,
            city,
            members,
            employer: employer.map(|(e, _)| e.name.clone()),
        };
        self.out.households.push(h.clone());
        Ok(h)
    }

    async fn account(
        &mut self,
        phone: &str,
        name: &str,
        grants: &[(Role, Option<i64>)],
    ) -> Result<i64, ScenarioError> {
        let p = PhoneNumber::parse(phone).map_err(|e| data(e.to_string()))?;
        let now = self.at.epoch_ms();
        let user = self
            .store
            .create_user(
                &p,
                name,
                self.hash,
                homefront_domain::locale::Locale::ZhCn,
                now,
            )
            .await?;
        for (role, unit) in grants {
            self.store.grant_role(user.id, *role, *unit, now).await?;
        }
        Ok(user.id)
    }

    fn login(&mut self, role: &str, phone: &str, note: &str) {
        self.out.logins.push(DemoLogin {
            role: role.into(),
            phone: phone.into(),
            note: note.into(),
        });
    }

    async fn pair(&self, household: i64, volunteer: i64, role: &str) -> Result<(), ScenarioError> {
        self.store
            .create_pairing(
                household,
                volunteer,
                role.parse().expect("a pairing role of the scenario"),
                None,
                self.at.epoch_ms(),
            )
            .await?;
        Ok(())
    }
}

/// Builds the scenario into `store` (which must hold no organisations or
/// accounts) as of `at`; `password_hash` (an Argon2id hash of
/// [`DEMO_PASSWORD`], made once) is used for every account. Jitter of
/// people's synthetic points comes from `seed`.
///
/// # Errors
/// Database errors, or [`ScenarioError::Data`] when the shipped division
/// data lacks a division the programme names.
pub async fn build(
    store: &Store,
    at: Timestamp,
    password_hash: &str,
    seed: u64,
) -> Result<Scenario, ScenarioError> {
    store.import_divisions(32, at.epoch_ms(), |_, _| {}).await?;
    let mut b = Builder {
        store,
        hash: password_hash,
        at,
        rng: StdRng::seed_from_u64(seed ^ 0x5eed_2020),
        next_volunteer_phone: 0,
        next_requester_phone: 0,
        out: Scenario::default(),
    };
    let province = b.division("320000").await?;
    let nanjing = b.division("320100").await?;
    b.out.province_id = province.id;
    // The provincial team offers orders to the k nearest at once, like the
    // WeChat work group in which volunteers "grabbed" orders.
    store
        .set_dispatch_setting(
            province.id,
            &NewDispatchSetting {
                mode: "broadcast",
                broadcast_k: 3,
                weights: "{}",
                reoffer_cooldown_minutes: DEFAULT_REOFFER_COOLDOWN_MINUTES,
            },
            at.epoch_ms(),
        )
        .await?;

    // Accounts for each role.
    b.account("13800000000", "示例管理员", &[(Role::Admin, None)])
        .await?;
    b.login("admin", "13800000000", "organisations, catalogue, accounts");
    b.account(
        "13800000001",
        "示例团省委协调员",
        &[(Role::Coordinator, Some(province.id))],
    )
    .await?;
    b.login(
        "coordinator (province)",
        "13800000001",
        "the whole province: dispatch queue, escalations, volunteers",
    );
    b.account(
        "13800000002",
        "示例南京团市委协调员",
        &[(Role::Coordinator, Some(nanjing.id))],
    )
    .await?;
    b.login("coordinator (city: Nanjing)", "13800000002", "Nanjing only");
    let xuanwu = b.division("320102").await?;
    b.account(
        "13800000003",
        "示例玄武区团委协调员",
        &[(Role::Coordinator, Some(xuanwu.id))],
    )
    .await?;
    b.login("coordinator (county: Xuanwu)", "13800000003", "玄武区 only");

    // Hospitals as employers on their district's point.
    let mut hospitals = Vec::new();
    for (name, adcode) in HOSPITALS {
        let district = b.division(adcode).await?;
        hospitals.push(b.unit(OrgKind::Employer, name, &district).await?);
    }
    b.account(
        "13800000004",
        "示例省人民医院联络员",
        &[(Role::Liaison, Some(hospitals[0].id))],
    )
    .await?;
    b.login(
        "liaison (Jiangsu Province Hospital)",
        "13800000004",
        "verifies staff, orders on their behalf",
    );

    // The provincial team: 46 volunteers living in Nanjing's urban districts.
    let team = b
        .unit(OrgKind::Team, "团省委省应急保障志愿服务队", &province)
        .await?;
    b.out.provincial_team_id = team.id;
    let mut urban = Vec::new();
    for a in NANJING_URBAN {
        urban.push(b.division(a).await?);
    }
    for i in 0..46usize {
        let home = urban[i % urban.len()].clone();
        let mut quals = Vec::new();
        if i % 4 == 0 {
            quals.push(CredentialKind::DrivingLicence);
        }
        if i % 3 == 0 {
            quals.push(CredentialKind::FirstAid);
        }
        let v = b
            .volunteer(
                Programme::Provincial,
                &team,
                &home,
                15.0,
                &quals,
                b.shift(),
                2,
            )
            .await?;
        if i == 0 {
            b.out.login_volunteer_id = v.user_id;
            let phone = v.phone.trim_start_matches("+86").to_string();
            b.login(
                "volunteer (provincial team)",
                &phone,
                "offers wait for you: accept, check in and out",
            );
        }
    }
    // Staff of the nine hospitals: four households each; a third of the
    // staff were sent to Hubei (their orders take the priority channel).
    for (h, hospital) in hospitals.clone().iter().enumerate() {
        for k in 0..4usize {
            let home = urban[(h + k) % urban.len()].clone();
            let relations: &[&str] = match k {
                0 => &["self", "parent"],
                1 => &["self", "child", "parent"],
                2 => &["self", "spouse"],
                _ => &["self", "child"],
            };
            let hh = b
                .household(
                    Programme::Provincial,
                    &home,
                    relations,
                    Some((hospital, (h + k) % 3 == 0)),
                )
                .await?;
            if h == 0 && k == 0 {
                b.out.login_requester_id = hh.requester_id;
                let phone = hh.phone.trim_start_matches("+86").to_string();
                let volunteer = b
                    .out
                    .volunteers
                    .iter()
                    .find(|v| v.user_id == b.out.login_volunteer_id)
                    .map(|v| v.phone.trim_start_matches("+86").to_string())
                    .unwrap_or_default();
                b.login(
                    "requester (Jiangsu Province Hospital staff)",
                    &phone,
                    &format!(
                        "order for a family member (offered to {volunteer} first), confirm, rate"
                    ),
                );
            }
        }
    }

    // Nanjing committee: carriers' call time and data, courier errands.
    let nj_team = b
        .unit(OrgKind::Team, "南京团市委青年志愿者", &nanjing)
        .await?;
    for name in [
        "中国移动南京分公司团委",
        "中国联通南京分公司团委",
        "中国电信南京分公司团委",
    ] {
        b.unit(OrgKind::Partner, name, &nanjing).await?;
    }
    for i in 0..6usize {
        let home = urban[(i * 3) % urban.len()].clone();
        b.volunteer(Programme::Nanjing, &nj_team, &home, 20.0, &[], b.shift(), 2)
            .await?;
    }
    // Southeast University: meals to Zhongda Hospital's staff.
    let gulou = b.division("320106").await?;
    let seu = b
        .unit(OrgKind::Team, "东南大学团委送餐志愿者", &gulou)
        .await?;
    for _ in 0..6 {
        b.volunteer(Programme::Seu, &seu, &gulou, 10.0, &[], b.shift(), 2)
            .await?;
    }
    for _ in 0..3 {
        let home = gulou.clone();
        b.household(
            Programme::Seu,
            &home,
            &["self"],
            Some((&hospitals[2], false)),
        )
        .await?;
    }

    // Yangzhou: the partner company's fleet of 20 cars.
    let yangzhou = b.division("321000").await?;
    b.unit(OrgKind::Partner, "熊猫汽车科技有限公司", &yangzhou)
        .await?;
    let fleet = b.unit(OrgKind::Team, "熊猫爱心车队", &yangzhou).await?;
    let yz_counties = b.counties("3210").await?;
    for i in 0..20usize {
        let home = yz_counties[i % yz_counties.len()].clone();
        b.volunteer(
            Programme::Yangzhou,
            &fleet,
            &home,
            30.0,
            &[CredentialKind::DrivingLicence],
            b.shift(),
            1,
        )
        .await?;
    }
    for i in 0..8usize {
        let home = yz_counties[i % yz_counties.len()].clone();
        b.household(Programme::Yangzhou, &home, &["self"], None)
            .await?;
    }

    // Xuzhou: a city team and two county teams, one-to-one pairings.
    let xuzhou = b.division("320300").await?;
    let xz_counties = b.counties("3203").await?;
    store
        .set_dispatch_setting(
            xuzhou.id,
            &NewDispatchSetting {
                mode: "sequential",
                broadcast_k: 1,
                weights: "{}",
                reoffer_cooldown_minutes: DEFAULT_REOFFER_COOLDOWN_MINUTES,
            },
            at.epoch_ms(),
        )
        .await?;
    let xz_teams = [
        b.unit(OrgKind::Team, "徐州助医青年志愿服务队", &xuzhou)
            .await?,
        b.unit(
            OrgKind::Team,
            "示例县级助医青年志愿服务队(一)",
            &xz_counties[0],
        )
        .await?,
        b.unit(
            OrgKind::Team,
            "示例县级助医青年志愿服务队(二)",
            &xz_counties[1],
        )
        .await?,
    ];
    for i in 0..10usize {
        let (team, home) = match i % 3 {
            0 => (&xz_teams[0], xz_counties[2 % xz_counties.len()].clone()),
            1 => (&xz_teams[1], xz_counties[0].clone()),
            _ => (&xz_teams[2], xz_counties[1].clone()),
        };
        let team = team.clone();
        let v = b
            .volunteer(
                Programme::Xuzhou,
                &team,
                &home,
                20.0,
                &[CredentialKind::DrivingLicence, CredentialKind::FirstAid],
                b.shift(),
                1,
            )
            .await?;
        let hh = b
            .household(Programme::Xuzhou, &home, &["self", "child", "parent"], None)
            .await?;
        b.pair(hh.household_id, v.user_id, "primary").await?;
    }

    // Yancheng: 33 tutors, each paired with three of 99 children.
    let yancheng = b.division("320900").await?;
    let yc_counties = b.counties("3209").await?;
    let tutors_team = b
        .unit(OrgKind::Team, "盐城青年教师线上辅导志愿者", &yancheng)
        .await?;
    for i in 0..33usize {
        let home = yc_counties[i % yc_counties.len()].clone();
        let v = b
            .volunteer(
                Programme::Yancheng,
                &tutors_team,
                &home,
                10.0,
                &[CredentialKind::Teacher],
                (18 * 60, 22 * 60),
                2,
            )
            .await?;
        // Tutors keep weekly evening windows: offers for evening lessons
        // reach them even while they are off duty during the day.
        let (start, end) = (
            NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
            NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
        );
        let windows: Vec<WeeklyWindow> = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .map(|d| WeeklyWindow::new(d, start, end))
        .collect();
        store
            .replace_availability_windows(v.user_id, &windows, at)
            .await?;
        for _ in 0..3 {
            let hh = b
                .household(Programme::Yancheng, &home, &["self", "child"], None)
                .await?;
            b.pair(hh.household_id, v.user_id, "primary").await?;
        }
    }

    // Nantong: six frontline families, each with a primary and a backup.
    let nt_counties = b.counties("3206").await?;
    let nantong = b.division("320600").await?;
    let nt_team = b
        .unit(OrgKind::Team, "南通团市委结对志愿者", &nantong)
        .await?;
    for i in 0..6usize {
        let home = nt_counties[i % nt_counties.len()].clone();
        let quals: &[CredentialKind] = if i % 2 == 0 {
            &[CredentialKind::FirstAid, CredentialKind::MedicalLicence]
        } else {
            &[CredentialKind::FirstAid]
        };
        let primary = b
            .volunteer(
                Programme::Nantong,
                &nt_team,
                &home,
                20.0,
                quals,
                b.shift(),
                2,
            )
            .await?;
        let backup = b
            .volunteer(
                Programme::Nantong,
                &nt_team,
                &home,
                20.0,
                &[CredentialKind::FirstAid],
                b.shift(),
                2,
            )
            .await?;
        let hh = b
            .household(
                Programme::Nantong,
                &home,
                &["self", "parent", "child"],
                None,
            )
            .await?;
        b.pair(hh.household_id, primary.user_id, "primary").await?;
        b.pair(hh.household_id, backup.user_id, "backup").await?;
    }

    // The 12355 counselling teams of twelve cities (all but Lianyungang),
    // two counsellors each; two staff households sent to Hubei per city
    // that has none above.
    for city in [
        "3201", "3202", "3203", "3204", "3205", "3206", "3208", "3209", "3210", "3211", "3212",
        "3213",
    ] {
        let unit = b.division(&format!("{city}00")).await?;
        let counties = b.counties(city).await?;
        let team = b
            .unit(
                OrgKind::Team,
                &format!("{}12355心理疏导志愿服务队", unit.name),
                &unit,
            )
            .await?;
        for i in 0..2usize {
            let home = counties[i % counties.len()].clone();
            b.volunteer(
                Programme::Counselling,
                &team,
                &home,
                10.0,
                &[CredentialKind::Counsellor],
                [(7 * 60, 15 * 60), (13 * 60, 22 * 60)][i],
                3,
            )
            .await?;
        }
        if !b.out.households.iter().any(|h| h.city == city) {
            let employer = b
                .unit(
                    OrgKind::Employer,
                    &format!("{}示例医院(援鄂医疗队派出单位)", unit.name),
                    &unit,
                )
                .await?;
            for i in 0..2usize {
                let home = counties[i % counties.len()].clone();
                b.household(
                    Programme::Counselling,
                    &home,
                    &["self", "spouse"],
                    Some((&employer, true)),
                )
                .await?;
            }
        }
    }
    b.out.volunteers.sort_by_key(|v| v.user_id);
    b.out.households.sort_by_key(|h| h.requester_id);
    Ok(b.out)
}

/// Where a household lives: its first member with coordinates.
async fn household_point(store: &Store, household_id: i64) -> Result<Option<GeoPoint>, StoreError> {
    Ok(store
        .members(household_id)
        .await?
        .iter()
        .find_map(|m| m.longitude.zip(m.latitude))
        .and_then(|(lon, lat)| GeoPoint::new(lon, lat).ok()))
}

/// Stages a built scenario for a person trying `serve --demo` (never for
/// `demo simulate`, whose figures stay those of the programme's model).
///
/// The province broadcasts each order to the 3 nearest volunteers and the
/// live driver answers within seconds, so a person signed in as the login
/// volunteer would rarely see an offer. Here the login volunteer's home
/// moves to about 500 m north of the login requester's household (same
/// district, jittered like everyone's), and the login volunteer becomes
/// the primary paired volunteer of that household and of its nearest
/// provincial neighbour: one-to-one pairings like Xuzhou's and Nantong's.
/// A paired household's order is offered to its paired volunteer alone
/// first, for the item's offer timeout (3–10 min); when that offer
/// expires or is declined, the province's broadcast hands the order on.
///
/// Returns the neighbour household, whose orders the live driver places
/// to keep an offer in front of the login volunteer.
///
/// # Errors
/// Database errors, or [`ScenarioError::Data`] when the scenario lacks
/// the login accounts or their household has no coordinates.
pub async fn stage_live(
    store: &Store,
    scenario: &Scenario,
    at: Timestamp,
) -> Result<DemoHousehold, ScenarioError> {
    let volunteer_id = scenario.login_volunteer_id;
    let login = scenario
        .households
        .iter()
        .find(|h| h.requester_id == scenario.login_requester_id)
        .ok_or_else(|| data("the login requester has no household"))?;
    let home = household_point(store, login.household_id)
        .await?
        .ok_or_else(|| data("the login requester's household has no coordinates"))?;
    let volunteer = store
        .volunteer(volunteer_id)
        .await?
        .ok_or_else(|| data("the login volunteer is missing"))?;
    let mut profile = volunteer.profile();
    // 0.0045° of latitude is about 500 m.
    profile.home_location = GeoPoint::new(home.longitude, home.latitude + 0.0045).ok();
    store.update_volunteer(volunteer_id, &profile, at).await?;

    let mut neighbour: Option<(f64, &DemoHousehold)> = None;
    for h in scenario
        .households
        .iter()
        .filter(|h| h.programme == Programme::Provincial && h.requester_id != login.requester_id)
    {
        let Some(p) = household_point(store, h.household_id).await? else {
            continue;
        };
        let km = p.haversine_km(&home);
        if neighbour.is_none_or(|(best, _)| km < best) {
            neighbour = Some((km, h));
        }
    }
    let (_, neighbour) = neighbour.ok_or_else(|| data("no provincial household to pair"))?;
    for h in [login, neighbour] {
        store
            .create_pairing(
                h.household_id,
                volunteer_id,
                homefront_domain::pairing::PairingRole::Primary,
                None,
                at.epoch_ms(),
            )
            .await?;
    }
    Ok(neighbour.clone())
}
