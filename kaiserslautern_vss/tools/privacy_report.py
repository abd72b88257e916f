"""vss-privacy-report: the data-protection documents of a site, from its configuration.

    vss-privacy-report [--config config/site_rathausvorplatz.yaml]
                       [--site config/site_rathausvorplatz_privacy.yaml] [--output docs/privacy]

Writes, as Markdown and HTML: the technical part of the record of processing activities
(Verzeichnis von Verarbeitungstätigkeiten, Art. 30 DSGVO), the technical description for
the data-protection impact assessment (DSFA, Art. 35 DSGVO) and the text of the on-site
information sign (vorgelagertes Hinweisschild, Art. 13 DSGVO / DSK-Orientierungshilfe
Videoüberwachung). Technical facts come from the validated graph config and its rules,
so the documents describe what actually runs; controller, purposes and legal basis come
from the site file. ROS-free.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.camera.credentials import mask_url
from kaiserslautern_vss.events.rule_base import Rule
from kaiserslautern_vss.events.rule_schema import RuleConfigError, load_rules_file
from kaiserslautern_vss.ros.topics import RECORDED_PER_CAMERA
from kaiserslautern_vss.tools.document import Block, Bullets, Heading, Paragraph, table, to_html, to_markdown

SITE_FIELDS = ('site', 'controller', 'data_protection_officer', 'supervisory_authority', 'purposes',
               'legal_basis', 'data_subjects', 'recipients', 'third_country_transfer', 'information_url',
               'roles', 'cameras')
POLICY_TEXT = {'heads': 'Köpfe aller erkannten Personen und alle erkannten Gesichter',
               'persons': 'erkannte Personen vollständig', 'faces': 'erkannte Gesichter'}
METHOD_TEXT = {'pixelate': 'verpixelt', 'blur': 'weichgezeichnet', 'fill': 'vollflächig übermalt'}


class SiteConfigError(ValueError):
    """The site file lacks what the documents must state."""


@dataclass(frozen=True)
class Site:
    """Everything the documents are made of."""
    metadata: dict[str, Any]
    drivers: list[NodeSpec]
    privacy: dict[str, Any]
    events: dict[str, Any]
    rules: list[Rule]

    @property
    def retention_hours(self) -> float:
        return self.events['retention_hours']

    def camera(self, camera_id: str) -> Mapping[str, Any]:
        return self.metadata['cameras'].get(camera_id) or {}


def load_site(config: Path, site_file: Path) -> Site:
    try:
        metadata = yaml.safe_load(Path(site_file).read_text(encoding='utf-8'))
    except (OSError, yaml.YAMLError) as error:
        raise SiteConfigError(f'cannot read site file {site_file}: {error}') from error
    missing = [f for f in SITE_FIELDS if not isinstance(metadata, dict) or not metadata.get(f)]
    if missing:
        raise SiteConfigError(f'{site_file}: missing {", ".join(missing)} (the documents must state them)')
    specs = load_graph(config)
    by_executable = {s.executable: s for s in specs}
    for needed in ('privacy', 'event_manager'):
        if needed not in by_executable:
            raise SiteConfigError(f'{config}: no {needed} node; the documents describe a full site graph')
    drivers = [s for s in specs if s.executable == 'camera_driver']
    undescribed = sorted({d.parameters['camera_id'] for d in drivers} - set(metadata['cameras']))
    if undescribed:
        raise SiteConfigError(f'{site_file}: cameras {", ".join(undescribed)} have no location/view description')
    events = by_executable['event_manager'].parameters
    return Site(metadata, drivers, by_executable['privacy'].parameters, events,
                load_rules_file(Path(events['rules_file'])))


def _hours(value: float) -> str:
    return f'{value:g} Stunden'


def _camera_rows(site: Site) -> list[tuple]:
    rows = []
    for driver in site.drivers:
        values = driver.parameters
        info = site.camera(values['camera_id'])
        rate = f'max. {values["max_rate_hz"]:g} Bilder/s' if values['max_rate_hz'] else 'Bildrate der Kamera'
        rows.append((values['camera_id'], info.get('location', ''), info.get('view', ''),
                     mask_url(values['url']), rate, len(values['privacy_zones'])))
    return rows


def _zone_rows(site: Site) -> list[tuple]:
    rows = []
    for driver in site.drivers:
        values = driver.parameters
        descriptions = list(site.camera(values['camera_id']).get('zones', []))
        for index, polygon in enumerate(values['privacy_zones']):
            description = descriptions[index] if index < len(descriptions) else 'ohne Beschreibung'
            rows.append((values['camera_id'], f'Zone {index + 1}', description,
                         f'{polygon} (Pixel bei {values["privacy_zones_width"]}x{values["privacy_zones_height"]})'))
    return rows


def _rule_rows(site: Site) -> list[tuple]:
    rows = []
    for rule in site.rules:
        windows = ', '.join(f'{w.start:%H:%M}-{w.end:%H:%M}' for w in rule.settings.time_windows) or 'immer'
        rows.append((rule.name, rule.kind, ', '.join(rule.cameras) or 'alle Kameras',
                     ', '.join(sorted(rule.settings.classes)), windows))
    return rows


def _storage_facts(site: Site) -> list[str]:
    events = site.events
    quota = f'{events["quota_mb"]} MB' if events['quota_mb'] else 'keine Obergrenze'
    return [
        f'Speicherdauer (retention_hours): {_hours(events["retention_hours"])}; danach automatische Löschung, '
        'außer eine Aufzeichnung wurde als Beweismittel gesichert.',
        f'Speicherplatz-Obergrenze (quota_mb): {quota}; älteste Aufzeichnungen zuerst gelöscht.',
        f'Mindestens freier Speicher (min_free_mb): {events["min_free_mb"]} MB.',
        f'Prüfintervall der Löschung (retention_check_s): {events["retention_check_s"]:g} s.',
        f'Speicherort (record_root): {events["record_root"]}, nur auf dem Auswerterechner vor Ort.',
    ]


def _protection_facts(site: Site) -> list[str]:
    events = site.events
    encryption = ('Verschlüsselung ruhender Daten (encryption): AES-256-GCM, Schlüssel '
                  f'{events["encryption_key_file"]} außerhalb des Aufzeichnungsverzeichnisses'
                  if events['encryption'] else 'Verschlüsselung ruhender Daten (encryption): AUS')
    return [
        encryption,
        f'Integrität: jede Aufzeichnung erhält ein Manifest mit Prüfsummen, signiert mit Ed25519 '
        f'(signing_key_file {events["signing_key_file"]}).',
        f'Live-Ansicht: {site.metadata["roles"]["view_live"]}',
        f'Export: {site.metadata["roles"]["export"]}',
        f'Aufhebung der Maskierung: {site.metadata["roles"]["unmask"]}',
        'Netztrennung: Kameranetz und Auswerterechner ohne Internetzugang; ROS-2-Kommunikation nur '
        'rechnerintern (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST).',
    ]


def _masking_facts(site: Site) -> list[str]:
    privacy = site.privacy
    deadline = ('vollständig maskiert veröffentlicht' if privacy['on_deadline'] == 'mask_all' else 'verworfen')
    return [
        f'Statische Privatzonen werden in der Kamera-Anbindung geschwärzt, bevor irgendein anderer Teil '
        f'des Systems das Bild sieht ({len(_zone_rows(site))} Zonen, siehe Tabelle).',
        f'Maskierung (policy {privacy["policy"]}, method {privacy["method"]}): '
        f'{POLICY_TEXT[privacy["policy"]]} werden {METHOD_TEXT[privacy["method"]]}.',
        f'Gesichtserkennung zusätzlich zur Personenerkennung (face_detection): '
        f'{"ja" if privacy["face_detection"] else "nein"}; verlorene Personen bleiben '
        f'{privacy["hold_frames"]} Bilder lang maskiert (hold_frames).',
        f'Fehlersicher: scheitert für ein Bild die Erkennung oder die Maskierung, oder sind seine Erkennungen '
        f'ungültig, wird es {deadline} (on_deadline {privacy["on_deadline"]}).',
        'Rohbilder (image_raw) verlassen den Auswerterechner nie, werden nie gespeichert und nie angezeigt.',
    ]


def _recording_facts(site: Site) -> list[str]:
    events = site.events
    recorded = ', '.join(RECORDED_PER_CAMERA)
    return [
        'Aufgezeichnet wird ausschließlich bei einem Vorfall (Regel unten oder Auslösung durch die Leitstelle).',
        f'Je Vorfall: {events["pre_event_s"]:g} s vor dem Auslösen (pre_event_s, nur im Arbeitsspeicher '
        f'vorgehalten, höchstens {events["buffer_max_mb"]} MB je Kamera) bis {events["post_event_s"]:g} s nach '
        f'dem Ende (post_event_s); ein Vorfall endet {events["end_hold_s"]:g} s nach Wegfall der Bedingung.',
        f'Inhalt je Kamera: {recorded} (anonymisierte Bilder, Erkennungen, Kameradaten) und die '
        'Vorfallsmeldungen; nie Rohbilder.',
    ]


def processing_record(site: Site) -> list[Block]:
    meta = site.metadata
    return [
        Heading(1, f'Verzeichnis von Verarbeitungstätigkeiten (Art. 30 DSGVO) – Videoschutz {meta["site"]}'),
        Paragraph('Technischer Teil, erzeugt mit vss-privacy-report aus der laufenden Konfiguration.'),
        Heading(2, 'Verantwortlicher und Datenschutzbeauftragte'),
        Bullets((f'Verantwortlicher: {meta["controller"]["name"]}, {meta["controller"]["address"]}, '
                 f'{meta["controller"]["contact"]}',
                 f'Datenschutzbeauftragte: {meta["data_protection_officer"]["name"]}, '
                 f'{meta["data_protection_officer"]["contact"]}')),
        Heading(2, 'Zwecke und Rechtsgrundlage'),
        Bullets(tuple(meta['purposes'])),
        Paragraph(f'Rechtsgrundlage: {meta["legal_basis"]}'),
        Heading(2, 'Betroffene, Daten, Empfänger'),
        Bullets((f'Betroffene Personen: {meta["data_subjects"]}',
                 'Datenkategorien: Videobilder des öffentlichen Raums (nur anonymisiert gespeichert), '
                 'Objekterkennungen (Klasse, Position, Spurnummer), Vorfallsmeldungen',
                 *[f'Empfänger: {r}' for r in meta['recipients']],
                 f'Übermittlung in Drittländer: {meta["third_country_transfer"]}')),
        Heading(2, 'Kameras'),
        table(('Kamera', 'Standort', 'Blickfeld', 'Quelle', 'Bildrate', 'Privatzonen'), _camera_rows(site)),
        Heading(2, 'An der Quelle geschwärzte Privatzonen'),
        table(('Kamera', 'Zone', 'Beschreibung', 'Polygon'), _zone_rows(site)) if _zone_rows(site)
        else Paragraph('Keine Privatzonen konfiguriert.'),
        Heading(2, 'Anonymisierung'),
        Bullets(tuple(_masking_facts(site))),
        Heading(2, 'Was wann aufgezeichnet wird'),
        Bullets(tuple(_recording_facts(site))),
        table(('Regel', 'Art', 'Kamera', 'Objektklassen', 'aktiv (Ortszeit)'), _rule_rows(site)),
        Heading(2, 'Löschfristen'),
        Bullets(tuple(_storage_facts(site))),
        Heading(2, 'Technische und organisatorische Maßnahmen (Art. 32 DSGVO)'),
        Bullets(tuple(_protection_facts(site))),
    ]


def impact_assessment(site: Site) -> list[Block]:
    meta = site.metadata
    risks = [
        ('Identifizierung von Passanten', 'Anonymisierung vor jeder Anzeige und Speicherung; fehlersicher '
         f'(on_deadline {site.privacy["on_deadline"]})'),
        ('Einblick in Wohnungen', f'{len(_zone_rows(site))} statische Privatzonen, an der Quelle geschwärzt'),
        ('Anlasslose Daueraufzeichnung', f'Aufzeichnung nur bei Vorfällen ({len(site.rules)} Regeln), '
         f'{site.events["pre_event_s"]:g} s Vorlauf nur im Arbeitsspeicher'),
        ('Zu lange Speicherung', f'automatische Löschung nach {_hours(site.retention_hours)}'),
        ('Unbefugter Zugriff auf Aufzeichnungen', 'Verschlüsselung ' + ('an' if site.events['encryption'] else 'AUS')
         + ', signierte Manifeste, Export nur durch benannte Personen mit Audit-Log'),
        ('Zugriff aus dem Netz', 'Netztrennung, DDS nur rechnerintern'),
    ]
    return [
        Heading(1, f'Datenschutz-Folgenabschätzung (Art. 35 DSGVO) – Videoschutz {meta["site"]}'),
        Paragraph('Technische Beschreibung der Verarbeitung, erzeugt mit vss-privacy-report aus der laufenden '
                  'Konfiguration; Bewertung von Notwendigkeit und Verhältnismäßigkeit durch den Verantwortlichen.'),
        Heading(2, 'Systematische Beschreibung'),
        Bullets((f'{len(site.drivers)} Kameras: ' + ', '.join(f'{r[0]} ({r[1]})' for r in _camera_rows(site)),
                 *_masking_facts(site), *_recording_facts(site), *_storage_facts(site))),
        Heading(2, 'Zwecke'),
        Bullets(tuple(meta['purposes'])),
        Heading(2, 'Risiken und Abhilfemaßnahmen'),
        table(('Risiko', 'Maßnahme (aus der Konfiguration)'), risks),
        Heading(2, 'Auslöseregeln'),
        table(('Regel', 'Art', 'Kamera', 'Objektklassen', 'aktiv (Ortszeit)'), _rule_rows(site)),
    ]


def information_sign(site: Site) -> list[Block]:
    meta = site.metadata
    return [
        Heading(1, 'Videoüberwachung'),
        Paragraph(f'{meta["site"]}: Dieser Platz wird mit {len(site.drivers)} Kameras beobachtet. Personen werden '
                  'automatisch unkenntlich gemacht; aufgezeichnet wird nur bei einem Vorfall.'),
        Bullets((f'Verantwortlich: {meta["controller"]["name"]}, {meta["controller"]["address"]}, '
                 f'{meta["controller"]["contact"]}',
                 f'Datenschutzbeauftragte: {meta["data_protection_officer"]["contact"]}',
                 'Zwecke: ' + '; '.join(meta['purposes']),
                 f'Rechtsgrundlage: {meta["legal_basis"]}',
                 f'Speicherdauer: {_hours(site.retention_hours)}, außer zur Beweissicherung',
                 f'Beschwerderecht: {meta["supervisory_authority"]}',
                 f'Weitere Informationen (Art. 13 DSGVO) und Ihre Rechte: {meta["information_url"]}')),
    ]


DOCUMENTS = {
    'verarbeitungsverzeichnis': ('Verzeichnis von Verarbeitungstätigkeiten', processing_record),
    'dsfa': ('Datenschutz-Folgenabschätzung', impact_assessment),
    'hinweisschild': ('Hinweisschild Videoüberwachung', information_sign),
}


def write_documents(site: Site, output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (title, build) in DOCUMENTS.items():
        blocks = build(site)
        for suffix, text in (('.md', to_markdown(blocks)), ('.html', to_html(blocks, title))):
            path = output / f'{stem}{suffix}'
            path.write_text(text, encoding='utf-8')
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    from kaiserslautern_vss.paths import share_dir
    config_dir = share_dir() / 'config'
    parser = argparse.ArgumentParser(prog='vss-privacy-report', description=__doc__.split('\n')[0])
    parser.add_argument('--config', type=Path, default=config_dir / 'site_rathausvorplatz.yaml')
    parser.add_argument('--site', type=Path, default=config_dir / 'site_rathausvorplatz_privacy.yaml',
                        help='controller, purposes, legal basis, camera descriptions')
    parser.add_argument('--output', type=Path, default=Path('privacy_report'))
    args = parser.parse_args(argv)
    try:
        site = load_site(args.config, args.site)
    except (GraphConfigError, SiteConfigError, RuleConfigError) as error:
        print(f'vss-privacy-report: {error}', file=sys.stderr)
        return 2
    for path in write_documents(site, args.output):
        print(path)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
