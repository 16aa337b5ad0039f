"""Folium maps that draw without the internet: Leaflet and its plugins come from hab's own static files.

`make install` runs `npm ci` in frontend/static/ (package.json + package-lock.json pin leaflet,
leaflet.markercluster and leaflet.heat), and Streamlit serves that folder at /app/static/
(`server.enableStaticServing`). `localise` rewrites every element's CDN links to those files, so only the
base-map tiles (HAB_MAP_TILES, or none) ever need the network.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import folium
import streamlit as st
from folium.plugins import HeatMap, MarkerCluster

from frontend.config import load_config

DAEGU_CENTRE = (35.8714, 128.6014)
COLOURS = ("#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab")
MAX_ZOOM = 19
CLUSTER_ABOVE = 500  # points in one layer above which "auto" clusters them
ACCIDENT_KINDS = frozenset({"accident", "accident_test"})

_VENDOR = "static/node_modules"
# What our maps use, as paths under the served static folder. jQuery, Bootstrap and the awesome-markers
# font that folium also lists are not needed by points, clusters, heat layers, popups or the layer control.
JS = {
    "leaflet": "leaflet/dist/leaflet.js",
    "markercluster": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "heat": "leaflet.heat/dist/leaflet-heat.js",
}
CSS = {
    "leaflet_css": "leaflet/dist/leaflet.css",
    "markercluster_css": "leaflet.markercluster/dist/MarkerCluster.css",
    "markercluster_default_css": "leaflet.markercluster/dist/MarkerCluster.Default.css",
}
TILE_PRESETS = {
    "osm": ("OpenStreetMap", None),
    "openstreetmap": ("OpenStreetMap", None),
    "cartodb": ("CartoDB positron", None),
}
NO_TILES = {"", "off", "none", "no", "false", "0"}


class MapMode(StrEnum):
    AUTO = "auto"
    POINTS = "points"
    CLUSTER = "cluster"
    HEAT = "heat"


MODE_LABELS = {
    MapMode.AUTO: "자동 (많으면 묶기)",
    MapMode.POINTS: "점",
    MapMode.CLUSTER: "묶음(클러스터)",
    MapMode.HEAT: "열지도 (사고 데이터)",
}


@dataclass(frozen=True)
class Layer:
    """One dataset on the map: its listing entry, its /points answer and its colour."""

    dataset: dict[str, Any]
    points: dict[str, Any]
    colour: str


def asset_url(path: str) -> str:
    """The served URL of a vendored file, root-relative so it works behind nginx as well as directly."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}" if base else ""
    return f"{prefix}/app/{_VENDOR}/{path}"


def _walk(element: Any) -> Iterator[Any]:
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def localise(fmap: folium.Map) -> folium.Map:
    """Point every element's JavaScript and CSS at hab's own copies (instance attributes shadow folium's
    class-level CDN lists, which are what streamlit-folium and folium's own HTML read)."""
    for element in _walk(fmap):
        if hasattr(element, "default_js"):
            element.default_js = []
            element.default_css = []
    uses = {type(e) for e in _walk(fmap)}
    js = [("leaflet", asset_url(JS["leaflet"]))]
    css = [("leaflet_css", asset_url(CSS["leaflet_css"]))]
    if MarkerCluster in uses:
        js.append(("markercluster", asset_url(JS["markercluster"])))
        css += [(k, asset_url(CSS[k])) for k in ("markercluster_css", "markercluster_default_css")]
    if HeatMap in uses:
        js.append(("heat", asset_url(JS["heat"])))
    fmap.default_js = js
    fmap.default_css = css
    return fmap


def tile_options() -> dict[str, Any]:
    """folium.Map's `tiles`/`attr` from HAB_MAP_TILES: a preset name, a URL template, or off."""
    value = load_config().map_tiles.strip()
    if value.lower() in NO_TILES:
        return {"tiles": None}
    preset = TILE_PRESETS.get(value.lower())
    if preset:
        return {"tiles": preset[0]}
    return {"tiles": value, "attr": "지도 타일"}


def popup_html(label: dict[str, Any]) -> str:
    return "<br>".join(
        f"<b>{html.escape(str(k))}</b>: {html.escape(str(v))}" for k, v in label.items() if v is not None
    )


def layer_mode(layer: Layer, mode: MapMode) -> MapMode:
    """What one layer is drawn as: heat only for accident data, clusters for dense layers in auto mode."""
    if mode is MapMode.HEAT:
        return MapMode.HEAT if layer.dataset["kind"] in ACCIDENT_KINDS else MapMode.AUTO
    if mode is MapMode.AUTO:
        return MapMode.CLUSTER if layer.points["returned"] > CLUSTER_ABOVE else MapMode.POINTS
    return mode


def _points_geojson(layer: Layer) -> folium.GeoJson:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [pt["lon"], pt["lat"]]},
            "properties": {"popup": popup_html(pt["label"])},
        }
        for pt in layer.points["points"]
    ]
    # One GeoJSON layer per dataset: far lighter in the browser than a marker object per point.
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        marker=folium.CircleMarker(radius=4, weight=1, fill=True, fill_opacity=0.7),
        style_function=lambda _f, c=layer.colour: {"color": c, "fillColor": c},
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False) if layer.points["label_columns"] else None,
    )


def add_layer(fmap: folium.Map, layer: Layer, mode: MapMode) -> None:
    """One dataset as points, a marker cluster or a heat layer, under its own entry of the layer control."""
    name = f"{layer.dataset['name']} ({layer.points['returned']:,})"
    drawn = layer_mode(layer, mode)
    if drawn is MapMode.HEAT:
        HeatMap([[pt["lat"], pt["lon"]] for pt in layer.points["points"]], name=name, radius=14).add_to(fmap)
        return
    if drawn is MapMode.CLUSTER:
        group: folium.FeatureGroup | MarkerCluster = MarkerCluster(name=name, show=True)
    else:
        group = folium.FeatureGroup(name=name, show=True)
    _points_geojson(layer).add_to(group)
    group.add_to(fmap)


def legend_html(layers: list[Layer]) -> str:
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;'
        f'background:{layer.colour};margin-right:6px"></span>{html.escape(layer.dataset["name"])}</div>'
        for layer in layers
    )
    return (
        '<div class="hab-legend" style="position:absolute;bottom:24px;left:24px;z-index:9999;background:white;'
        'padding:8px 12px;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.3);font-size:13px">'
        f"<b>범례</b>{rows}</div>"
    )


def base_map(layers: list[Layer]) -> folium.Map:
    """An empty map centred on the layers' points (Daegu when there are none), tiles as configured."""
    lats = [pt["lat"] for layer in layers for pt in layer.points["points"]]
    lons = [pt["lon"] for layer in layers for pt in layer.points["points"]]
    centre = (sum(lats) / len(lats), sum(lons) / len(lons)) if lats else DAEGU_CENTRE
    fmap = folium.Map(location=centre, zoom_start=11, control_scale=True, **tile_options())
    # Without a tile layer Leaflet has no maximum zoom, and marker clusters refuse such a map.
    fmap.options["max_zoom"] = MAX_ZOOM
    if lats:
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    return fmap


def build_map(layers: list[Layer], mode: MapMode = MapMode.AUTO) -> folium.Map:
    """The whole map: every layer, the layer control and the legend; call `localise` before rendering
    (`render` does) once any extra sections have added their own layers."""
    fmap = base_map(layers)
    for layer in layers:
        add_layer(fmap, layer, mode)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(legend_html(layers)))
    return fmap


def render(fmap: folium.Map, *, key: str, height: int = 620) -> None:
    from streamlit_folium import st_folium

    st_folium(localise(fmap), key=key, height=height, use_container_width=True, returned_objects=[])
